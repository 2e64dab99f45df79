import type { LoaderFunctionArgs } from "@remix-run/cloudflare";
import { json } from "@remix-run/cloudflare";
import { OrganizationSwitcher, UserButton } from "@clerk/remix";
import { Form, NavLink, Outlet, useLoaderData } from "@remix-run/react";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { resolveAuthMode } from "~/lib/offline-auth.server";
import { ZoneLabel } from "~/lib/time-zone";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args);
  const offline = resolveAuthMode(getEnv(args.context)).mode === "offline";
  return json({ member, offline });
}

const navClass = ({ isActive }: { isActive: boolean }) =>
  `rounded-md px-3 py-1.5 text-sm font-medium ${isActive ? "bg-slate-800 text-white" : "text-slate-300 hover:text-white"}`;

export default function ConsoleLayout() {
  const { member, offline } = useLoaderData<typeof loader>();
  return (
    <div className="min-h-full">
      <header className="bg-slate-900">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
          <span className="text-lg font-semibold text-white">Caisey</span>
          <nav className="flex flex-wrap gap-1" aria-label="Console">
            <NavLink to="/endpoints" className={navClass}>Endpoints</NavLink>
            <NavLink to="/clients" className={navClass}>Clients</NavLink>
            <NavLink to="/review" className={navClass}>Review</NavLink>
            <NavLink to="/fleet" className={navClass}>Fleet runs</NavLink>
            {member.role === "admin" ? <NavLink to="/runtime-updates" className={navClass}>Runtime updates</NavLink> : null}
            {member.role === "admin" ? <NavLink to="/members" className={navClass}>Members</NavLink> : null}
            <NavLink to="/library" className={navClass}>Library</NavLink>
            {member.role === "admin" ? <NavLink to="/settings/api" className={navClass}>API</NavLink> : null}
            {member.role === "admin" ? <NavLink to="/settings" end className={navClass}>Settings</NavLink> : null}
          </nav>
          <div className="ml-auto flex flex-wrap items-center gap-3 text-sm text-slate-300">
            <ZoneLabel className="text-xs text-slate-300" />
            <span data-testid="current-member">
              {member.name} · <span className="uppercase">{member.role}</span> · {member.org.name}
            </span>
            {offline ? (
              <Form method="post" action="/offline/sign-out">
                <button className="rounded border border-slate-600 px-2 py-1 hover:text-white">Sign out</button>
              </Form>
            ) : (
              // Clerk's own controls: switch organisation (tenant), account and sign-out.
              <>
                <OrganizationSwitcher hidePersonal afterSelectOrganizationUrl="/endpoints" afterCreateOrganizationUrl="/clients" />
                <UserButton />
              </>
            )}
          </div>
        </div>
        {offline ? (
          <div className="bg-amber-400 px-4 py-0.5 text-center text-xs font-medium text-amber-950">
            Offline auth — local development only
          </div>
        ) : null}
      </header>
      <main className="mx-auto max-w-7xl px-4 py-6">
        <Outlet />
      </main>
    </div>
  );
}
