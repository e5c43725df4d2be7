#!/usr/bin/env node
// ws_echo.mjs - benchmark: acked echo throughput of siogate-wsd over
// WebSocket with many socket.io-client clients.
//
//   node tests/bench/ws_echo.mjs [--clients 50] [--seconds 10] [--window 1]
//                                [--payload 20]
//
// Starts siogate-wsd (plugin echo, a fresh store in a temp dir) on a free
// loopback port, connects --clients socket.io-client clients with
// transports ["websocket"], then for --seconds each client keeps --window
// "message-with-ack" events in flight (a closed loop: a new one as soon as
// an ack arrives). Prints one line: acked events/s, ack latency p50/p99,
// the daemon's CPU share and RSS. Numbers only, no assertion.
//
// Environment: SG_BUILDDIR (default: the source tree). socket.io-client is
// loaded from tests/integration/node_modules. The daemon is stopped (by
// pid, SIGTERM) at the end, whatever happens.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(here, "../..");
const BUILD = process.env.SG_BUILDDIR || SRC;
const require = createRequire(join(SRC, "tests/integration/package.json"));
const { io } = require("socket.io-client");

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CLIENTS = arg("clients", 50);
const SECONDS = arg("seconds", 10);
const WINDOW = arg("window", 1);
const PAYLOAD = arg("payload", 20);

const freePort = () =>
  new Promise((r, j) => {
    const s = createServer();
    s.on("error", j);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => r(port));
    });
  });

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const p = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(p[11]) + Number(p[12]); // utime + stime
}
const rssKB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ws-echo-"));
  const conf = join(dir, "siogate.conf");
  writeFileSync(conf, `db = ${join(dir, "siogate.db")}\nplugin = ${join(BUILD, "plugins/echo.so")}\n`);
  const port = await freePort();
  const wsd = spawn(join(BUILD, "gateway/siogate-wsd"), ["--conf", conf, "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  const stop = () => {
    try {
      wsd.kill("SIGTERM");
    } catch {}
  };
  process.on("exit", stop);
  try {
    await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error("siogate-wsd not ready")), 10000);
      wsd.stderr.on("data", (d) => {
        err += d;
        if (/ready: /.test(err)) {
          clearTimeout(t);
          res();
        }
      });
      wsd.on("exit", (c) => rej(new Error(`siogate-wsd exited ${c}: ${err}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        new Promise((res, rej) => {
          const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
          s.once("connect", () => res(s));
          s.once("connect_error", rej);
        }),
      ),
    );
    const payload = "x".repeat(PAYLOAD);
    const lat = [];
    let done = 0,
      running = true,
      measuring = false;
    const loop = (s) => {
      if (!running) return;
      const t0 = process.hrtime.bigint();
      s.emit("message-with-ack", payload, () => {
        if (measuring) {
          done++;
          if (lat.length < 2e6) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        loop(s);
      });
    };
    for (const s of clients) for (let i = 0; i < WINDOW; i++) loop(s);
    await new Promise((r) => setTimeout(r, 1000)); // warm-up
    measuring = true;
    const c0 = cpuTicks(wsd.pid),
      t0 = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    measuring = false;
    const dt = (Date.now() - t0) / 1000,
      c1 = cpuTicks(wsd.pid);
    running = false;
    const rss = rssKB(wsd.pid);
    lat.sort((a, b) => a - b);
    const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
    console.log(
      `ws_echo: clients=${CLIENTS} window=${WINDOW} payload=${PAYLOAD}B seconds=${dt.toFixed(1)} ` +
        `acked_events_per_s=${Math.round(done / dt)} p50_ms=${q(0.5).toFixed(2)} p99_ms=${q(0.99).toFixed(2)} ` +
        `wsd_cpu=${(((c1 - c0) / 100 / dt) * 100).toFixed(0)}% wsd_rss=${(rss / 1024).toFixed(1)}MB`,
    );
    for (const s of clients) s.disconnect();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    stop();
    await new Promise((r) => (wsd.exitCode !== null ? r() : wsd.once("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
