/// <reference types="@cloudflare/vitest-pool-workers/types" />
import type { D1Migration } from "@cloudflare/vitest-pool-workers";
import type { Env as AppEnv } from "../../app/lib/env.server";
import type { SessionEnv } from "../../workers/session/src/env";

declare global {
  namespace Cloudflare {
    interface Env extends AppEnv, Omit<SessionEnv, "DB"> {
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
