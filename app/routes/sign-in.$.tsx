import { SignIn } from "@clerk/remix";
import { redirect, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { getEnv } from "~/lib/env.server";
import { resolveAuthMode } from "~/lib/offline-auth.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  if (resolveAuthMode(getEnv(context)).mode === "offline") {
    const url = new URL(request.url);
    return redirect(`/offline/sign-in${url.search}`);
  }
  return null;
}

export default function SignInPage() {
  return (
    <main className="flex min-h-full items-center justify-center p-10">
      <SignIn />
    </main>
  );
}
