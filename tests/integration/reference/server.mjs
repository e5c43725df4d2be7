#!/usr/bin/env node
// Reference server for the integration tests: the echo plugin
// (plugins/echo.c) written with the real socket.io 4.8 server, so that the
// very same test files can be run against it (SG_TARGET=reference) to prove
// the tests themselves right before blaming siogate.
//
// usage: node reference/server.mjs --port PORT [--host 127.0.0.1] [--conf FILE]
//
// FILE uses siogate's conf format ("key = value" lines, '#' comments); the
// keys that matter here are ping_interval, ping_timeout, connect_timeout
// (ms), max_payload (bytes), path and cors_origin; db and plugin are
// accepted and ignored. When listening it prints one line, its base URL
// (like contrib/stack), and it exits cleanly on SIGTERM/SIGINT.
//
// Behaviour (same as the echo plugin):
//   namespaces "/" and "/custom": on connection emit "auth" with the
//   handshake auth ({} when the client sent none);
//   on "/": "message" -> socket.emit("message-back", ...args)
//           "message-with-ack" -> ack(...args)
//   any other namespace: socket.io's default CONNECT_ERROR
//   {"message":"Invalid namespace"}.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { referenceOptions } from "./options.mjs";

const { args, opts } = referenceOptions(process.argv.slice(2));
const httpServer = createServer();
const io = new Server(httpServer, opts);

function echoAuth(socket) {
  const auth = socket.handshake.auth;
  socket.emit("auth", auth && typeof auth === "object" ? auth : {});
}

io.of("/").on("connection", (socket) => {
  echoAuth(socket);
  socket.on("message", (...args) => socket.emit("message-back", ...args));
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
});
io.of("/custom").on("connection", (socket) => {
  echoAuth(socket);
});

if (process.env.SG_REFERENCE_DEBUG) {
  io.engine.on("connection_error", (e) =>
    process.stderr.write(`connection_error ${e.code} ${e.message} ${JSON.stringify(e.context)}\n`),
  );
  io.on("connection", (s) =>
    s.on("disconnect", (r) => process.stderr.write(`disconnect ${s.id} ${r}\n`)),
  );
}

httpServer.listen(args.port, args.host, () => {
  const { port } = httpServer.address();
  process.stdout.write(`http://${args.host}:${port}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
