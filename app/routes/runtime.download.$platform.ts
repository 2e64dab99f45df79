// GET /runtime/download/:platform[?version=1.2.3]: the runtime executable,
// with its SHA-256 and signature in headers. Public: binaries are not secret.
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import {
  artifactHeaders,
  getRuntimeArtifact,
  parsePlatform,
  parseReleaseQuery,
  releaseErrorResponse,
} from "~/models/runtime-releases.server";

export async function loader({ request, params, context }: LoaderFunctionArgs) {
  try {
    const platform = parsePlatform(params.platform);
    const { version } = parseReleaseQuery(new URL(request.url));
    const download = await getRuntimeArtifact(getEnv(context), platform, version);
    return new Response(download.body, { headers: artifactHeaders(download, version !== undefined) });
  } catch (error) {
    return releaseErrorResponse(error);
  }
}
