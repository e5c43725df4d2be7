#!/usr/bin/env node
// reference.mjs - the benchmarks' handlers on the reference socket.io 4.8
// server (the npm packages of tests/integration), for tests/bench/compare.
//
// usage: node tests/bench/reference.mjs --port PORT [--host 127.0.0.1] [--conf FILE]
//
// Exactly the handlers of tests/bench/bench_plugin.c, on "/":
//   "message-with-ack" ...args  -> ack(...args)
//   "join" room                 -> socket.join(room), then ack()
//   "broadcast" room, payload   -> io.to(room).emit("tick", payload), then
//                                  ack() when the client asked for one
//
// FILE is siogate's conf format ("key = value", '#' comments); the keys
// used are path, ping_interval, ping_timeout, connect_timeout and
// max_payload (as tests/integration/reference/server.mjs reads them); the
// others (db, plugin, ...) are ignored. The HTTP server is Node's stock
// one with its defaults, as the reference server is usually run. When
// listening it prints one line, its base URL (like contrib/stack); it exits
// on SIGTERM/SIGINT.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { referenceOptions } from "../integration/reference/options.mjs";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(join(SRC, "tests/integration/package.json"));
const { Server } = require("socket.io");

const { args, opts } = referenceOptions(process.argv.slice(2));
const httpServer = createServer();
const io = new Server(httpServer, opts);

io.of("/").on("connection", (socket) => {
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    if (typeof room !== "string") return;
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("broadcast", (room, payload, ack) => {
    if (typeof room !== "string" || payload === undefined || typeof payload === "function") return;
    io.to(room).emit("tick", payload);
    if (typeof ack === "function") ack();
  });
});

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
