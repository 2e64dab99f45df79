import { json, type LoaderFunctionArgs } from "@remix-run/cloudflare";
import { useLoaderData } from "@remix-run/react";
import { createDb } from "~/db/client.server";
import { requireMember } from "~/lib/auth.server";
import { getEnv } from "~/lib/env.server";
import { formatTimestamp } from "~/lib/format";
import { resolveAuthMode } from "~/lib/offline-auth.server";
import { listMembers, MEMBERS_PAGE_ROLES } from "~/models/members.server";

export async function loader(args: LoaderFunctionArgs) {
  const member = await requireMember(args, MEMBERS_PAGE_ROLES);
  const env = getEnv(args.context);
  const members = await listMembers(createDb(env.DB), member.org.id);
  return json({ members, offline: resolveAuthMode(env).mode === "offline", orgName: member.org.name });
}

const ROLE_TEXT = {
  admin: "Everything, including clients, approval policies, endpoint credentials and runtime updates",
  technician: "Runs commands and creates enrollment tokens",
  noc: "Watches sessions and reviews the audit trail; runs nothing",
} as const;

export default function MembersPage() {
  const { members, offline, orgName } = useLoaderData<typeof loader>();
  return (
    <section>
      <h1 className="text-2xl font-semibold">Members</h1>
      <p className="mt-1 max-w-3xl text-sm text-slate-600" data-testid="members-mirror-note">
        A read-only mirror of {orgName}&apos;s membership in Clerk, kept in step by Clerk&apos;s webhooks and each member&apos;s sign-in.{" "}
        {offline
          ? "Offline mode (local development): members are created by the offline sign-in page."
          : "To invite or remove someone or change a role, use the organisation switcher in the header (Manage organisation) or the Clerk dashboard; the change shows here, and takes effect, at once."}
      </p>
      <div className="mt-4 overflow-x-auto">
        <table className="w-full rounded-lg bg-white text-sm shadow">
          <thead className="bg-slate-100 text-left text-slate-600">
            <tr>
              <th className="px-4 py-2">Name</th>
              <th className="px-4 py-2">Email</th>
              <th className="px-4 py-2">Role</th>
              <th className="px-4 py-2">Since</th>
            </tr>
          </thead>
          <tbody>
            {members.map((member) => (
              <tr key={member.userId} className="border-t border-slate-100" data-testid="member-row" data-role={member.role}>
                <td className="px-4 py-2 font-medium">{member.name}</td>
                <td className="px-4 py-2 text-slate-600">{member.email}</td>
                <td className="px-4 py-2" title={ROLE_TEXT[member.role]}>
                  <span className="uppercase">{member.role}</span>
                  <span className="block text-xs text-slate-500">{ROLE_TEXT[member.role]}</span>
                </td>
                <td className="px-4 py-2 text-slate-600">{formatTimestamp(member.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
