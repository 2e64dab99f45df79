// Mutation runs only (vitest.mutation.config.ts): Stryker activates a mutant inside the vitest worker, but the
// runtime's process-level tests spawn runtime/bin → runtime/dist (built from the instrumented sandbox sources).
// The instrumented code also reads the active mutant from this variable, so the spawned runtime runs the same
// mutant as the test that started it.
import { beforeAll, beforeEach } from "vitest";

const strykerNamespace = () => (globalThis as { __stryker__?: { activeMutant?: string } }).__stryker__;
const propagate = () => {
  const active = strykerNamespace()?.activeMutant;
  if (active === undefined) delete process.env.__STRYKER_ACTIVE_MUTANT__;
  else process.env.__STRYKER_ACTIVE_MUTANT__ = String(active);
};
beforeAll(propagate);
beforeEach(propagate);
