// GET /runtime/manifest[?version=1.2.3]: the release manifest (hashes and signatures of every platform).
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { getRuntimeManifest, parseReleaseQuery, releaseErrorResponse } from "~/models/runtime-releases.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  try {
    const { version } = parseReleaseQuery(new URL(request.url));
    const manifest = await getRuntimeManifest(getEnv(context), version);
    return Response.json(manifest, {
      headers: { "Cache-Control": version ? "public, max-age=31536000, immutable" : "public, max-age=60" },
    });
  } catch (error) {
    return releaseErrorResponse(error);
  }
}
