// A real HTTP proxy (the `proxy` package) in its own process, so a test's
// spawnSync (the runtime's enroll) cannot block it. It resolves some host names
// itself, like a plant proxy with its own DNS view, and reports every CONNECT
// target to the parent over IPC. Started by MappingProxy in stack.ts.
import http from "node:http";
import { createProxy } from "proxy";

const { hosts, credentials } = JSON.parse(process.argv[2] ?? "{}");
const server = createProxy(http.createServer());
if (credentials) {
  const expected = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
  server.authenticate = (req) => req.headers["proxy-authorization"] === expected;
}
const [proxyConnect] = server.listeners("connect");
server.removeAllListeners("connect");
server.on("connect", (req, ...rest) => {
  const target = req.url ?? "";
  process.send({ connect: target });
  const colon = target.lastIndexOf(":");
  const host = target.slice(0, colon);
  if (hosts?.[host]) req.url = `${hosts[host]}:${target.slice(colon + 1)}`;
  proxyConnect.call(server, req, ...rest);
});
// IPC is ordered: answering a sync after the connects means the parent has them all.
process.on("message", (message) => {
  if (message?.sync !== undefined) process.send({ synced: message.sync });
});
process.on("disconnect", () => process.exit(0));
server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
