#!/usr/bin/env node
// ws_idle.mjs - benchmark: memory and idle CPU of siogate-wsd holding many
// idle Socket.IO sessions over WebSocket.
//
//   node tests/bench/ws_idle.mjs [--sessions 10000] [--seconds 20]
//                                [--ping-interval 25000]
//
// Starts siogate-wsd (plugin echo, a fresh store in a temp dir) on a free
// loopback port, samples its RSS, opens --sessions WebSockets with a
// minimal client (the "ws" package: Engine.IO open, Socket.IO CONNECT to
// "/", pong to every ping), waits until every one got its CONNECT reply,
// lets it settle, then samples RSS again and the daemon's CPU over
// --seconds. Prints one line: RSS before/after, the delta per session, the
// idle CPU share. Numbers only, no assertion.
//
// Mind the descriptor limits: this process and the daemon each need one
// per session (ulimit -n; the daemon raises its soft limit to the hard
// one). Environment: SG_BUILDDIR (default: the source tree). The daemon
// is stopped (by pid, SIGTERM) at the end, whatever happens.

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
const WebSocket = require("ws");

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const SESSIONS = arg("sessions", 10000);
const SECONDS = arg("seconds", 20);
const PING_INTERVAL = arg("ping-interval", 25000);
const PARALLEL = 200; // handshakes in flight

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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
  return Number(p[11]) + Number(p[12]);
}
const rssKB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

function session(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => reject(new Error("session timed out")), 30000);
    ws.on("message", (data) => {
      const m = data.toString();
      if (m[0] === "0") ws.send("40");
      else if (m === "2") ws.send("3");
      else if (m.startsWith("40")) {
        clearTimeout(timer);
        resolve(ws);
      }
    });
    ws.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ws-idle-"));
  const conf = join(dir, "siogate.conf");
  writeFileSync(
    conf,
    `db = ${join(dir, "siogate.db")}\nplugin = ${join(BUILD, "plugins/echo.so")}\n` +
      `ping_interval = ${PING_INTERVAL}\n`,
  );
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
  const socks = [];
  try {
    await new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error("siogate-wsd not ready")), 10000);
      wsd.stderr.on("data", (d) => {
        err += d;
        if (err.length > 65536) err = err.slice(-32768);
        if (/ready: /.test(err)) {
          clearTimeout(t);
          res();
        }
      });
      wsd.on("exit", (c) => rej(new Error(`siogate-wsd exited ${c}: ${err}`)));
    });
    const url = `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
    // a few sessions first, so that one-time costs (SQLite's cache,
    // allocator arenas, the tables) are not counted per session
    for (let i = 0; i < 50; i++) socks.push(await session(url));
    await sleep(1000);
    const rss0 = rssKB(wsd.pid);
    const t0 = Date.now();
    let next = socks.length;
    const worker = async () => {
      while (next < SESSIONS) {
        next++;
        socks.push(await session(url));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const rampS = (Date.now() - t0) / 1000;
    await sleep(3000);
    const rss1 = rssKB(wsd.pid);
    const c0 = cpuTicks(wsd.pid),
      s0 = Date.now();
    await sleep(SECONDS * 1000);
    const c1 = cpuTicks(wsd.pid),
      dt = (Date.now() - s0) / 1000;
    const rss2 = rssKB(wsd.pid);
    const n = socks.length - 50;
    console.log(
      `ws_idle: sessions=${socks.length} ramp=${rampS.toFixed(1)}s (${Math.round(n / rampS)}/s) ` +
        `rss_before=${(rss0 / 1024).toFixed(1)}MB rss_after=${(rss1 / 1024).toFixed(1)}MB ` +
        `rss_end=${(rss2 / 1024).toFixed(1)}MB per_session=${(((rss1 - rss0) * 1024) / n / 1024).toFixed(2)}KB ` +
        `idle_cpu=${(((c1 - c0) / 100 / dt) * 100).toFixed(1)}% over ${dt.toFixed(0)}s ` +
        `(ping_interval=${PING_INTERVAL}ms)`,
    );
  } finally {
    for (const s of socks) s.terminate();
    stop();
    await new Promise((r) => (wsd.exitCode !== null ? r() : wsd.once("exit", r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
