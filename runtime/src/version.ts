/** Reported in `hello`; bump with runtime releases. */
export const RUNTIME_VERSION = "0.1.0";
