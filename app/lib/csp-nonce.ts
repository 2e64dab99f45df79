import { createContext, useContext } from "react";

/**
 * This response's CSP nonce, provided by entry.server.tsx. On the client it is
 * undefined: browsers hide nonce attributes from the DOM, and Remix renders its
 * scripts with suppressHydrationWarning, so nothing needs it after hydration.
 */
export const CspNonceContext = createContext<string | undefined>(undefined);

export function useCspNonce(): string | undefined {
  return useContext(CspNonceContext);
}
