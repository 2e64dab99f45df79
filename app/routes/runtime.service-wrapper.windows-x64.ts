// GET /runtime/service-wrapper/windows-x64: WinSW, which install.ps1 registers the runtime with as a Windows service.
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { getServiceWrapper, releaseErrorResponse } from "~/models/runtime-releases.server";

export async function loader({ context }: LoaderFunctionArgs) {
  try {
    const wrapper = await getServiceWrapper(getEnv(context));
    return new Response(wrapper.body, { headers: wrapper.headers });
  } catch (error) {
    return releaseErrorResponse(error);
  }
}
