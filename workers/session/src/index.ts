export { EdgeRateLimiter } from "./edge-rate-limiter";
export { EndpointSession } from "./endpoint-session";

// No public route: browsers and runtimes reach the Durable Objects only through
// the Pages edge, which authenticates them first (see app/edge/router.server.ts).
export default {
  fetch(): Response {
    return new Response("Not found", { status: 404 });
  },
} satisfies ExportedHandler;
