// The session's modules on their own, over a real Durable Object SQLite and
// without a socket (docs/decisions/0028-session-modules.md): the queue's
// ordering and windows, the runtime's reports, presence, and the alarm arbiter.
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TranscriptEvent } from "../../protocol/messages";
import { AlarmArbiter } from "../../workers/session/src/alarm";
import { AuditLog, MIN_REPLICATION_INTERVAL_MS } from "../../workers/session/src/audit-log";
import { CommandQueue, RESULT_GRACE_MS } from "../../workers/session/src/command-queue";
import { CommandStore } from "../../workers/session/src/command-store";
import { EventLog } from "../../workers/session/src/event-log";
import { OpenConnections } from "../../workers/session/src/open-connections";
import { RuntimeClock } from "../../workers/session/src/runtime-clock";
import { RuntimePresence } from "../../workers/session/src/runtime-presence";
import { RuntimeReports } from "../../workers/session/src/runtime-reports";
import { migrate } from "../../workers/session/src/schema";
import { SequenceFlow } from "../../workers/session/src/sequence-flow";
import { SessionStore } from "../../workers/session/src/session-store";

type Modules = ReturnType<typeof wire>;

/** A window open from an hour ago to an hour from now, every day (UTC). */
function openWindowPolicy() {
  const minuteOfDay = Math.floor((Date.now() % 86_400_000) / 60_000);
  return { timeZone: "UTC", maintenanceWindows: [{ id: "mw_open", days: [0, 1, 2, 3, 4, 5, 6], startMinute: (minuteOfDay + 1440 - 60) % 1440, durationMinutes: 120 }] };
}

function wire(sql: SqlStorage) {
  migrate(sql);
  const store = new SessionStore(sql);
  const broadcast: TranscriptEvent[] = [];
  const events = new EventLog(store, (sent) => broadcast.push(...sent));
  const audit = new AuditLog(sql, () => ({ endpointId: "ep_modules", orgId: "org_modules" }), () => {});
  const clock = new RuntimeClock({ get: (key) => store.value(key), set: (key, value) => store.setValue(key, value) });
  const commands = new CommandStore({ store, events, audit, clock });
  const sequences = new SequenceFlow({
    sql,
    appendEvent: (kind, body) => events.append(kind, body),
    audit: (entry) => audit.append(entry),
    skip: (commandId, error) => commands.finish(commandId, { status: "skipped", exitCode: null, error, timings: null }),
    policy: () => openWindowPolicy(),
  });
  let online = 0;
  const queue = new CommandQueue({ store, commands, sequences, events, audit, onlineSince: () => online });
  const reports = new RuntimeReports({ store, commands, events, audit, clock, sequences });
  const enqueue = (id: string, fields: { createdAt?: number; notBefore?: number | null; expiresAt?: number | null; alongside?: boolean; maintenanceWindow?: boolean } = {}) =>
    store.exec(
      `INSERT INTO commands (id, request_id, text, shell, timeout_ms, requested_by_id, requested_by_name, status, created_at, step_index, step_count, not_before, expires_at, alongside, maintenance_window)
       VALUES (?, ?, 'echo hi', 'default', 60000, 'u1', 'Tom', 'queued', ?, 0, 1, ?, ?, ?, ?)`,
      id,
      `req_${id}`,
      fields.createdAt ?? Date.now(),
      fields.notBefore ?? null,
      fields.expiresAt ?? null,
      fields.alongside ? 1 : 0,
      fields.maintenanceWindow ? 1 : 0,
    );
  return { store, events, audit, commands, queue, reports, broadcast, enqueue, setOnline: (since: number) => (online = since) };
}

let instances = 0;
function inFreshSession<T>(test: (modules: Modules) => T | Promise<T>): Promise<T> {
  const stub = env.ENDPOINT_SESSION.get(env.ENDPOINT_SESSION.idFromName(`modules-${++instances}`));
  return runInDurableObject(stub, (_instance: unknown, state: DurableObjectState) => test(wire(state.storage.sql)));
}

describe("command queue", () => {
  it("over a socket, sends one command at a time in order; one marked alongside does not wait", () =>
    inFreshSession(({ queue, enqueue, commands }) => {
      const now = Date.now();
      enqueue("a", { createdAt: now - 3 });
      enqueue("b", { createdAt: now - 2 });
      enqueue("c", { createdAt: now - 1, alongside: true });
      expect(queue.takeDue(now, true).map((c) => c.id)).toEqual(["a", "c"]);
      expect(queue.takeDue(now, true)).toEqual([]); // b waits for a
      commands.finish("a", { status: "succeeded", exitCode: 0, error: null, timings: null });
      expect(queue.takeDue(now, true).map((c) => c.id)).toEqual(["b"]);
    }));

  it("gives a check-in runtime everything due at once, in order", () =>
    inFreshSession(({ queue, enqueue }) => {
      const now = Date.now();
      enqueue("a", { createdAt: now - 2 });
      enqueue("b", { createdAt: now - 1 });
      expect(queue.takeDue(now, false).map((c) => c.id)).toEqual(["a", "b"]);
    }));

  it("holds work until its window opens, ends it when its expiry passes, and wakes for both", () =>
    inFreshSession(({ queue, enqueue, commands }) => {
      const now = Date.now();
      enqueue("later", { notBefore: now + 60_000 });
      enqueue("expiring", { notBefore: now + 120_000, expiresAt: now + 90_000 });
      expect(queue.takeDue(now, false)).toEqual([]);
      expect(queue.nextWakeAt(now)).toBe(now + 60_000);
      expect(queue.takeDue(now + 60_000, false).map((c) => c.id)).toEqual(["later"]);
      expect(queue.nextWakeAt(now + 60_000)).toBe(now + 90_000);
      queue.settle(now + 90_000);
      expect(commands.get("expiring")?.status).toBe("expired");
    }));

  it("decides on the one instant it was given: work in an open window is due even if the clock moved on meanwhile", () =>
    inFreshSession(({ queue, enqueue, store }) => {
      // The caller read the clock a moment before the queue looks at the window (seen under load in workerd, where
      // storage calls let time advance): the window gate must not put not_before past the caller's `now`.
      const now = Date.now() - 5;
      enqueue("windowed", { createdAt: now - 1, maintenanceWindow: true });
      expect(queue.takeDue(now, true).map((c) => c.id)).toEqual(["windowed"]);
      expect(store.one<{ not_before: number }>("SELECT not_before FROM commands WHERE id = 'windowed'")?.not_before).toBe(now);
    }));

  it("times out unreported work only while the runtime is online, after its limit and the grace", () =>
    inFreshSession(({ queue, enqueue, commands, setOnline }) => {
      const now = Date.now();
      enqueue("held");
      queue.takeDue(now, true);
      const deadline = now + 60_000 + RESULT_GRACE_MS;
      expect(queue.nextWakeAt(now)).toBeNull(); // offline: its result may be waiting in the runtime's outbox
      queue.timeOutUnreported(deadline + 1);
      expect(commands.get("held")?.status).toBe("dispatched");
      setOnline(now);
      expect(queue.nextWakeAt(now)).toBe(deadline);
      queue.timeOutUnreported(deadline - 1);
      expect(commands.get("held")?.status).toBe("dispatched");
      queue.timeOutUnreported(deadline);
      expect(commands.get("held")?.status).toBe("timed_out");
    }));
});

describe("runtime reports", () => {
  it("refuses reports about work never dispatched: nothing changes, the refusal is in the transcript and the audit trail", () =>
    inFreshSession(({ reports, enqueue, commands, audit, store }) => {
      enqueue("queued-only");
      const result = { commandId: "queued-only", status: "succeeded" as const, exitCode: 0, startedAt: Date.now(), finishedAt: Date.now(), durationMs: 1, tail: [], truncated: false, error: null };
      expect(reports.result(result, "203.0.113.9")).toBe(false);
      reports.started("queued-only", Date.now(), null);
      expect(commands.get("queued-only")).toMatchObject({ status: "queued", started_at: null });
      expect(store.all<{ kind: string }>("SELECT kind FROM events WHERE kind = 'runtime.refused'")).toHaveLength(2);
      expect(audit.all().filter((e) => e.kind === "runtime.refused").map((e) => e.actorAddress)).toContain("203.0.113.9");
    }));

  it("stores a dispatched command's result once; a repeat is acknowledged and changes nothing", () =>
    inFreshSession(({ reports, queue, enqueue, commands, store }) => {
      enqueue("run");
      queue.takeDue(Date.now(), true);
      const now = Date.now();
      const result = { commandId: "run", status: "succeeded" as const, exitCode: 0, startedAt: now, finishedAt: now, durationMs: 1, tail: [{ stream: "stdout" as const, data: "hi\n" }], truncated: false, error: null };
      expect(reports.result(result, null)).toBe(true);
      const events = store.all<{ seq: number }>("SELECT seq FROM events").length;
      expect(reports.result(result, null)).toBe(true);
      expect(store.all<{ seq: number }>("SELECT seq FROM events").length).toBe(events);
      expect(commands.get("run")?.status).toBe("succeeded");
    }));

  it("names output lost in transit when the result's tail starts past what arrived", () =>
    inFreshSession(({ reports, queue, enqueue, store }) => {
      enqueue("gap");
      queue.takeDue(Date.now(), true);
      reports.output("gap", 0, { stream: "stdout", data: "first\n" }, null);
      const now = Date.now();
      reports.result({ commandId: "gap", status: "succeeded", exitCode: 0, startedAt: now, finishedAt: now, durationMs: 1, tail: [{ stream: "stdout", data: "third\n" }], tailStartIndex: 2, truncated: false, error: null }, null);
      const truncated = store.all<{ body: string }>("SELECT body FROM events WHERE kind = 'command.truncated'").map((r) => JSON.parse(r.body).reason);
      expect(truncated).toEqual(["lost_in_transit"]);
    }));
});

describe("runtime presence", () => {
  it("takes a check-in runtime offline when it misses its check-ins, audited, and wakes for it", () =>
    inFreshSession(({ store, audit }) => {
      const presence = new RuntimePresence({ store, audit, runtimeConnections: () => [], broadcast: () => {}, directory: () => ({ db: env.DB, endpointId: "ep_modules" }), waitUntil: () => {} });
      const now = Date.now();
      presence.checkedIn(now, 30_000);
      presence.setOnline(true, "checkin");
      expect(presence.state()).toMatchObject({ online: true, transport: "checkin", nextCheckinAt: now + 30_000 });
      expect(presence.nextWakeAt(now)).toBe(now + 75_000);
      presence.wake(now + 74_999);
      expect(presence.onlineSince()).toBeGreaterThan(0);
      presence.wake(now + 75_000);
      expect(presence.onlineSince()).toBe(0);
      expect(audit.all().at(-1)).toMatchObject({ kind: "runtime.disconnected" });
    }));

  it("keeps the last-seen time to within ten seconds without a write per report, and exactly when the runtime goes", () =>
    inFreshSession(({ store, audit }) => {
      const presence = new RuntimePresence({ store, audit, runtimeConnections: () => [], broadcast: () => {}, directory: () => ({ db: env.DB, endpointId: "ep_modules" }), waitUntil: () => {} });
      const now = Date.now();
      presence.touchLastSeen(now);
      presence.touchLastSeen(now + 9_999);
      expect(store.numberValue("last_seen_at")).toBe(now);
      presence.touchLastSeen(now + 10_000);
      expect(store.numberValue("last_seen_at")).toBe(now + 10_000);
      presence.setOnline(false, null);
      expect(store.numberValue("last_seen_at")).toBeGreaterThanOrEqual(now);
      expect(store.numberValue("last_seen_at")).toBeLessThanOrEqual(Date.now());
    }));

  it("binds the session to the first tenant and refuses every other", () =>
    inFreshSession(({ store, audit }) => {
      const presence = new RuntimePresence({ store, audit, runtimeConnections: () => [], broadcast: () => {}, directory: () => ({ db: env.DB, endpointId: "ep_modules" }), waitUntil: () => {} });
      const identity = (orgId: string) => ({ peer: "runtime", endpointId: "ep", orgId, address: null }) as never;
      expect(presence.bindTenant(identity("org_a"))).toBe(true);
      expect(presence.bindTenant(identity("org_b"))).toBe(false);
      expect(presence.bindTenant(identity("org_a"))).toBe(true);
    }));
});

describe("alarm arbiter", () => {
  it("sets the one alarm to the earliest wake-up, writes an unchanged one once, and gives each module its turn in order", async () => {
    const set: number[] = [];
    const turns: string[] = [];
    let auditAt: number | null = 5_000;
    const clock = () => 1_000;
    const arbiter = new AlarmArbiter((at) => set.push(at), [
      { nextWakeAt: () => null, wake: () => void turns.push("presence") },
      { nextWakeAt: () => auditAt, wake: async () => void turns.push("audit") },
      { nextWakeAt: () => 9_000, wake: () => void turns.push("queue") },
    ], clock);
    arbiter.schedule();
    arbiter.schedule();
    expect(set).toEqual([5_000]);
    auditAt = 500; // already due: the alarm is set for now, never in the past
    arbiter.schedule();
    expect(set).toEqual([5_000, 1_000]);
    auditAt = null;
    await arbiter.fire();
    expect(turns).toEqual(["presence", "audit", "queue"]);
    expect(set.at(-1)).toBe(9_000);
  });
});

describe("alarm requests", () => {
  it("works the alarm out once per turn however many changes asked for it, and not during the alarm's own turn", async () => {
    const set: number[] = [];
    let asked = 0;
    let wakeAt = 5_000;
    const arbiter: AlarmArbiter = new AlarmArbiter((at) => set.push(at), [{ nextWakeAt: () => (asked += 1, wakeAt), wake: (): void => arbiter.requestSchedule() }], () => 1_000);
    arbiter.requestSchedule();
    arbiter.requestSchedule();
    arbiter.requestSchedule();
    expect(asked).toBe(0);
    await Promise.resolve();
    expect(asked).toBe(1);
    expect(set).toEqual([5_000]);
    wakeAt = 7_000;
    await arbiter.fire();
    await Promise.resolve();
    expect(asked).toBe(2); // the request made while waking was answered by the schedule that ends the turn
    expect(set).toEqual([5_000, 7_000]);
  });
});

describe("audit replication pace", () => {
  it("replicates an isolated event soon, and a busy endpoint's events at most about every MIN_REPLICATION_INTERVAL_MS", () =>
    inFreshSession(async ({ audit, store }) => {
      const t0 = Date.now();
      audit.append({ kind: "command.requested", commandId: "c1" }, t0);
      expect(audit.nextWakeAt()).toBe(t0 + 500);
      await audit.replicate(env.DB, "k".repeat(32), t0 + 500);
      expect(store.value("audit_alarm_at")).toBe("");
      audit.append({ kind: "command.requested", commandId: "c2" }, t0 + 600);
      const next = audit.nextWakeAt()!;
      expect(next).toBeGreaterThanOrEqual(t0 + 500 + MIN_REPLICATION_INTERVAL_MS * 0.75);
      expect(next).toBeLessThanOrEqual(t0 + 500 + MIN_REPLICATION_INTERVAL_MS * 1.25);
      audit.append({ kind: "command.requested", commandId: "c3" }, t0 + 700);
      expect(audit.nextWakeAt()).toBe(next);
    }));
});

describe("open connections", () => {
  it("reads partyserver's list once until a socket connects or closes, and never returns a socket that is no longer open", () => {
    let reads = 0;
    const sockets = [{ id: "a", readyState: 1 }, { id: "b", readyState: 1 }];
    const open = new OpenConnections(() => (reads += 1, sockets as never));
    expect(open.of("viewer").map((c) => c.id)).toEqual(["a", "b"]);
    expect(open.of("viewer").map((c) => c.id)).toEqual(["a", "b"]);
    expect(reads).toBe(1);
    sockets[0]!.readyState = 3; // closed without a close event reaching the session
    expect(open.of("viewer").map((c) => c.id)).toEqual(["b"]);
    sockets.push({ id: "c", readyState: 1 });
    open.changed();
    expect(open.of("viewer").map((c) => c.id)).toEqual(["b", "c"]);
    expect(reads).toBe(2);
  });
});
