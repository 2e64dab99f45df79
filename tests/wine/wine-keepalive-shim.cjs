// Preloaded (NODE_OPTIONS=--require) into the windows-x64 executable under wine only.
// wine 8.0's winsock rejects a socket option Node 22 sets for TCP keep-alive, so
// socket.setKeepAlive(true, delay) fails the connection with "connect UNKNOWN";
// undici (fetch: enroll, check-in) calls it on every connection. Real Windows 10+
// supports the option. Keep-alive probes do not matter for a one-minute test, so
// here it is a no-op; nothing else of the executable is changed.
const net = require("node:net");
net.Socket.prototype.setKeepAlive = function setKeepAliveUnderWine() {
  return this;
};
