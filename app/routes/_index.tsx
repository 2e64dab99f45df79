import { redirect, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { requireMember } from "~/lib/auth.server";

export async function loader(args: LoaderFunctionArgs) {
  await requireMember(args);
  return redirect("/endpoints");
}
