// Bandwidth on metered links: bytes on the wire for an idle runtime (WebSocket
// and 30 s check-in) and per `echo hi` command. Each runtime runs in its own
// network namespace joined to the host by a veth pair; the host side's kernel
// counters (/sys/class/net/<veth>/statistics) count every frame the runtime
// sends or receives, TCP/IP headers included, exactly. IPv6 is off and the
// neighbours are static, so nothing but the runtime's TCP traffic crosses the
// link (no ARP, no router solicitations). Real intervals: 90 s pings, 30 s
// check-ins; nothing is shortened. Needs root and `ip` (iproute2).
//
//   npm run bench:bandwidth   (after npm run build; also part of npm run bench)
//   options: --port 8799 --pings 3 --checkins 4 --commands 3
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEMO_RUNTIME_TOKEN } from "./seed.mjs";
import { runAndWait, signIn, Stack, Viewer, waitUntil } from "../tests/faults/stack";
import { machineDescription, writeBenchmarkSection } from "./bench-report.mjs";

const { values: options } = parseArgs({
  options: {
    port: { type: "string", default: "8799" },
    pings: { type: "string", default: "3" },
    checkins: { type: "string", default: "4" },
    commands: { type: "string", default: "3" },
  },
});
const PORT = Number(options.port);
const PINGS = Math.max(1, Number(options.pings));
const CHECKINS = Math.max(1, Number(options.checkins));
const COMMANDS = Math.max(1, Number(options.commands));
const PING_INTERVAL_S = 90;
const CHECKIN_INTERVAL_S = 30;
const ETHERNET_HEADER = 14;
/** A TLS 1.3 record around each message (5-byte header, 16-byte AEAD tag, 1 content-type byte); not on this cleartext loopback. */
const TLS_RECORD_OVERHEAD = 22;
const GOALS = { websocketIdlePerHour: 12 * 1024, checkinIdlePerHour: 60 * 1024 };

const root = resolve(process.cwd());
const CLI = join(root, "runtime/bin/caisey-runtime.mjs");
const children: ChildProcess[] = [];
const links: Link[] = [];

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}${result.stdout}`);
  return result.stdout.trim();
}

interface Counters {
  bytes: number;
  packets: number;
}

/** A network namespace for one runtime, joined to the host by a veth pair with no other traffic on it. */
class Link {
  readonly ns: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostIp: string;
  readonly nsIp: string;

  constructor(readonly name: string, index: number) {
    this.ns = `caisey-bw-${name}`;
    this.hostIf = `cbw${index}h`;
    this.nsIf = `cbw${index}n`;
    this.hostIp = `10.231.${index}.1`;
    this.nsIp = `10.231.${index}.2`;
  }

  setup() {
    this.teardown();
    run("ip", ["netns", "add", this.ns]);
    links.push(this);
    run("ip", ["link", "add", this.hostIf, "type", "veth", "peer", "name", this.nsIf]);
    run("ip", ["link", "set", this.nsIf, "netns", this.ns]);
    run("sysctl", ["-qw", `net.ipv6.conf.${this.hostIf}.disable_ipv6=1`]);
    run("ip", ["netns", "exec", this.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    run("ip", ["addr", "add", `${this.hostIp}/30`, "dev", this.hostIf]);
    run("ip", ["netns", "exec", this.ns, "ip", "addr", "add", `${this.nsIp}/30`, "dev", this.nsIf]);
    run("ip", ["link", "set", this.hostIf, "up"]);
    run("ip", ["netns", "exec", this.ns, "ip", "link", "set", this.nsIf, "up"]);
    run("ip", ["netns", "exec", this.ns, "ip", "link", "set", "lo", "up"]);
    // Static neighbours: a 4G link has no ARP, so none may be counted here.
    const hostMac = readFileSync(`/sys/class/net/${this.hostIf}/address`, "utf8").trim();
    const nsMac = run("ip", ["netns", "exec", this.ns, "cat", `/sys/class/net/${this.nsIf}/address`]);
    run("ip", ["neigh", "replace", this.nsIp, "lladdr", nsMac, "dev", this.hostIf, "nud", "permanent"]);
    run("ip", ["netns", "exec", this.ns, "ip", "neigh", "replace", this.hostIp, "lladdr", hostMac, "dev", this.nsIf, "nud", "permanent"]);
  }

  /** Both directions, as the host side of the veth counts them. */
  counters(): Counters {
    const read = (name: string) => Number(readFileSync(`/sys/class/net/${this.hostIf}/statistics/${name}`, "utf8"));
    return { bytes: read("rx_bytes") + read("tx_bytes"), packets: read("rx_packets") + read("tx_packets") };
  }

  /** Bytes the runtime sent (received by the host side). */
  sentByRuntime(): number {
    return Number(readFileSync(`/sys/class/net/${this.hostIf}/statistics/rx_bytes`, "utf8"));
  }

  teardown() {
    spawnSync("ip", ["netns", "del", this.ns]);
  }
}

/**
 * The stack listens on loopback only; this carries the namespace's connections
 * to it, byte for byte, and plays Cloudflare's edge for keep-alive: the local
 * server closes an idle connection after 5 s, Cloudflare keeps a client's
 * HTTP/1.1 connection 400 s. So the runtime's side stays open (up to 400 s idle)
 * and, when the server has closed its side, the next request goes out on a new
 * upstream connection, as an edge does toward its origin.
 */
function relay(link: Link): Promise<void> {
  const server = net.createServer((client) => {
    let upstream: net.Socket | null = null;
    let upgraded = false;
    // No Nagle: the relay must not coalesce what either side writes separately.
    client.setNoDelay(true);
    client.setTimeout(400_000, () => client.destroy());
    const open = () => {
      const socket = net.connect(PORT, "127.0.0.1");
      socket.setNoDelay(true);
      socket.on("data", (d) => {
        if (d.subarray(0, 12).toString() === "HTTP/1.1 101") upgraded = true;
        client.write(d);
      });
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        if (upstream === socket) upstream = null;
        // A WebSocket's end is the connection's end; an HTTP connection the server let go idle is not.
        if (upgraded) client.destroy();
      });
      upstream = socket;
      return socket;
    };
    client.on("data", (d) => (upstream ?? open()).write(d));
    client.on("error", () => client.destroy());
    client.on("close", () => upstream?.destroy());
  });
  return new Promise((r) => server.listen(PORT, link.hostIp, () => r()));
}

class NsRuntime {
  readonly dir = mkdtempSync(join(tmpdir(), "caisey-bw-runtime-"));
  endpointId = "";
  log = "";
  constructor(readonly link: Link) {}

  get server() {
    return `http://${this.link.hostIp}:${PORT}`;
  }

  /** Asynchronous: the relay it goes through lives in this process. */
  async enroll() {
    const child = spawn("ip", ["netns", "exec", this.link.ns, process.execPath, CLI, "enroll", "--server", this.server, "--token", DEMO_RUNTIME_TOKEN, "--state-dir", this.dir, "--hostname", `bandwidth-${this.link.name}`], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const code = await new Promise((r) => child.on("exit", r));
    if (code !== 0) throw new Error(`enroll failed: ${output}`);
    this.endpointId = JSON.parse(readFileSync(join(this.dir, "identity.json"), "utf8")).endpointId;
  }

  start(args: string[]) {
    const child = spawn("ip", ["netns", "exec", this.link.ns, process.execPath, CLI, "run", "--state-dir", this.dir, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HTTP_PROXY: "", HTTPS_PROXY: "", http_proxy: "", https_proxy: "" } });
    children.push(child);
    child.stdout!.on("data", (d) => (this.log += d));
    child.stderr!.on("data", (d) => (this.log += d));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once the link has carried nothing for `quietMs`, and returns the counters then. */
async function quiet(link: Link, quietMs = 1000): Promise<Counters> {
  let last = link.counters();
  let since = Date.now();
  for (;;) {
    await sleep(50);
    const now = link.counters();
    if (now.packets !== last.packets) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
  }
}

/**
 * Waits for the next check-in (a burst in which the runtime sent at least a
 * request's worth of bytes), then for it to end. Bursts of only a few small
 * packets (a connection's FIN exchange) are not check-ins.
 */
async function nextExchange(link: Link): Promise<Counters> {
  const deadline = Date.now() + (CHECKIN_INTERVAL_S + 15) * 1000;
  for (;;) {
    const before = link.counters();
    const sentBefore = link.sentByRuntime();
    await waitUntil("the next check-in", () => link.counters().packets !== before.packets, Math.max(1000, deadline - Date.now()));
    const after = await quiet(link, 1000);
    if (link.sentByRuntime() - sentBefore >= 200) return after;
  }
}

function diff(a: Counters, b: Counters) {
  const frames = b.bytes - a.bytes;
  const packets = b.packets - a.packets;
  return { frames, packets, ip: frames - packets * ETHERNET_HEADER };
}

async function echoHi(viewer: Viewer): Promise<void> {
  const finished = await runAndWait(viewer, "echo hi", (CHECKIN_INTERVAL_S + 20) * 1000);
  if (finished.status !== "succeeded") throw new Error(`echo hi ${finished.status}`);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const kb = (bytes: number) => (bytes / 1024).toFixed(1);

async function main() {
  if (process.getuid?.() !== 0) throw new Error("bench-bandwidth needs root (network namespaces)");
  const started = Date.now();
  const socketLink = new Link("ws", 101);
  const checkinLink = new Link("checkin", 102);
  socketLink.setup();
  checkinLink.setup();
  const stack = new Stack(PORT, ".wrangler/bench-bandwidth-state");
  process.on("exit", () => void stack.stop());
  await stack.start(true);
  await relay(socketLink);
  await relay(checkinLink);
  const cookie = await signIn(stack.origin);

  const socketRuntime = new NsRuntime(socketLink);
  const checkinRuntime = new NsRuntime(checkinLink);
  await socketRuntime.enroll();
  await checkinRuntime.enroll();
  const socketViewer = new Viewer(stack.origin, cookie, socketRuntime.endpointId);
  const checkinViewer = new Viewer(stack.origin, cookie, checkinRuntime.endpointId);
  await socketViewer.connect();
  await checkinViewer.connect();

  checkinRuntime.start(["--transport", "checkin", "--checkin-interval", String(CHECKIN_INTERVAL_S)]);
  socketRuntime.start(["--transport", "websocket"]);
  await waitUntil("the WebSocket to connect", () => socketRuntime.log.includes("] connected"), 30_000);
  const openedAt = Date.now();

  // Idle WebSocket: from 5 s after the open (hello and its answer are done) over whole ping intervals.
  const socketIdle = (async () => {
    await sleep(5000);
    const from = socketLink.counters();
    await sleep(PINGS * PING_INTERVAL_S * 1000);
    return diff(from, socketLink.counters());
  })();

  // Idle check-in: from the end of one check-in to the end of the CHECKINS-th after it.
  const checkin = (async () => {
    await waitUntil("the first check-in", () => checkinLink.counters().packets > 0, 30_000);
    let from = await quiet(checkinLink);
    const idleStart = from;
    for (let i = 0; i < CHECKINS; i++) {
      const previous = from;
      from = await nextExchange(checkinLink);
      const one = diff(previous, from);
      console.log(`idle check-in ${i + 1}: ${one.ip} IP bytes in ${one.packets} packets`);
    }
    const idle = diff(idleStart, from);
    // Per command: from the end of a check-in until the command is done and the link quiet,
    // minus the one scheduled check-in that carried the dispatch (idle cost, measured above).
    const perCommand: ReturnType<typeof diff>[] = [];
    for (let i = 0; i < COMMANDS; i++) {
      const before = i === 0 ? from : await nextExchange(checkinLink);
      await echoHi(checkinViewer);
      const after = await quiet(checkinLink, 1500);
      const window = diff(before, after);
      perCommand.push({ frames: window.frames - idle.frames / CHECKINS, packets: window.packets - idle.packets / CHECKINS, ip: window.ip - idle.ip / CHECKINS });
    }
    return { idle, perCommand };
  })();

  const idleSocket = await socketIdle;
  // Per command over the socket, away from a ping (pings fall at openedAt + k·90 s).
  const socketPerCommand: ReturnType<typeof diff>[] = [];
  for (let i = 0; i < COMMANDS; i++) {
    const sincePing = (Date.now() - openedAt) % (PING_INTERVAL_S * 1000);
    if (sincePing > (PING_INTERVAL_S - 10) * 1000 || sincePing < 2000) await sleep(12_000);
    const before = await quiet(socketLink, 500);
    await echoHi(socketViewer);
    socketPerCommand.push(diff(before, await quiet(socketLink, 1000)));
  }
  const checkinResult = await checkin;

  const socketPerHour = (idleSocket.ip / PINGS) * (3600 / PING_INTERVAL_S);
  const socketFramesPerHour = (idleSocket.frames / PINGS) * (3600 / PING_INTERVAL_S);
  const socketTlsPerHour = socketPerHour + 2 * TLS_RECORD_OVERHEAD * (3600 / PING_INTERVAL_S);
  const checkinPerHour = (checkinResult.idle.ip / CHECKINS) * (3600 / CHECKIN_INTERVAL_S);
  const checkinFramesPerHour = (checkinResult.idle.frames / CHECKINS) * (3600 / CHECKIN_INTERVAL_S);
  const checkinTlsPerHour = checkinPerHour + 2 * TLS_RECORD_OVERHEAD * (3600 / CHECKIN_INTERVAL_S);
  const verdict = (value: number, goal: number) => (value <= goal ? "meets" : "**misses**");
  const socketCommand = { ip: median(socketPerCommand.map((c) => c.ip)), frames: median(socketPerCommand.map((c) => c.frames)), packets: median(socketPerCommand.map((c) => c.packets)) };
  const checkinCommand = { ip: median(checkinResult.perCommand.map((c) => c.ip)), frames: median(checkinResult.perCommand.map((c) => c.frames)), packets: median(checkinResult.perCommand.map((c) => c.packets)) };

  const body = `Machine: ${machineDescription()}.
Each runtime (the real CLI) runs in its own network namespace joined to the host by a veth pair; the figures are the
host-side kernel counters of that veth (/sys/class/net/<veth>/statistics), both directions, so every TCP segment
counts, ACKs and TCP/IP headers included. "IP bytes" leave out the 14-byte Ethernet header (what a 4G data cap
counts); "frames" include it. No ARP, no IPv6 on the link; a relay on the host carries the namespace's connections to the
stack on loopback and keeps the runtime's HTTP connection open like Cloudflare's edge (400 s idle; the local server
itself closes idle connections after 5 s, which would add a TCP handshake to every check-in that production does not
have). Cleartext HTTP here; the "with TLS" column adds one TLS 1.3 record's overhead (${TLS_RECORD_OVERHEAD} bytes) per
message each way, as on Cloudflare (TLS handshakes are not in it: connections are reused, see ADR 0015).
Real intervals: the idle WebSocket over ${PINGS} whole ${PING_INTERVAL_S} s ping intervals (${PINGS * PING_INTERVAL_S} s), idle check-in over ${CHECKINS}
check-ins at a ${CHECKIN_INTERVAL_S} s interval; per-command figures are the median of ${COMMANDS} \`echo hi\` runs (check-in: minus the scheduled
check-in that carried the dispatch).

| measurement | packets | IP bytes | frames bytes | per hour (IP) | per hour with TLS (est.) | goal | result |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
| WebSocket idle, ${PINGS} pings | ${idleSocket.packets} | ${idleSocket.ip} | ${idleSocket.frames} | ${kb(socketPerHour)} KB | ${kb(socketTlsPerHour)} KB | ≤ 12 KB/h | ${verdict(socketPerHour, GOALS.websocketIdlePerHour)} |
| check-in idle, ${CHECKINS} check-ins at ${CHECKIN_INTERVAL_S} s | ${checkinResult.idle.packets} | ${checkinResult.idle.ip} | ${checkinResult.idle.frames} | ${kb(checkinPerHour)} KB | ${kb(checkinTlsPerHour)} KB | ≤ 60 KB/h | ${verdict(checkinPerHour, GOALS.checkinIdlePerHour)} |
| \`echo hi\` over the WebSocket | ${socketCommand.packets} | ${Math.round(socketCommand.ip)} | ${Math.round(socketCommand.frames)} | – | – | – | – |
| \`echo hi\` by check-in | ${Math.round(checkinCommand.packets)} | ${Math.round(checkinCommand.ip)} | ${Math.round(checkinCommand.frames)} | – | – | – | – |

Per idle ping exchange: ${Math.round(idleSocket.ip / PINGS)} IP bytes in ${(idleSocket.packets / PINGS).toFixed(1)} packets; per idle check-in:
${Math.round(checkinResult.idle.ip / CHECKINS)} IP bytes in ${(checkinResult.idle.packets / CHECKINS).toFixed(1)} packets. Bench wall time ${((Date.now() - started) / 1000).toFixed(0)} s.

Reproduce: \`npm run build && npm run bench:bandwidth\` (root; state in \`.wrangler/bench-bandwidth-state\`, port ${PORT}).`;
  console.log(body);
  writeBenchmarkSection("Bandwidth on metered links", body);
  socketViewer.close();
  checkinViewer.close();
  await stack.stop();
}

function cleanup() {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  for (const link of links) link.teardown();
}
process.on("exit", cleanup);
process.on("SIGINT", () => process.exit(130));
main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
