// GET /install.ps1: the Windows installer, with this console's origin in it.
import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { installerResponse } from "~/models/installers.server";

export function loader({ context }: LoaderFunctionArgs) {
  return installerResponse(getEnv(context), "ps1");
}
