import { archiveAuditReplica } from "./audit-archive";
import type { SessionEnv } from "./env";

export { EdgeRateLimiter } from "./edge-rate-limiter";
export { EndpointSession } from "./endpoint-session";

// No public route: browsers and runtimes reach the Durable Objects only through
// the Pages edge, which authenticates them first (see app/edge/router.server.ts).
export default {
  fetch(): Response {
    return new Response("Not found", { status: 404 });
  },
  /** Nightly (wrangler.toml [triggers]): archive the D1 audit replica to R2, then prune it (ADR 0029). */
  scheduled(controller, env, ctx): void {
    ctx.waitUntil(archiveAuditReplica(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<SessionEnv>;
