#!/usr/bin/env node
// handshakes.mjs - benchmark: what the handshake limits cost. Polling
// handshakes (GET ?EIO=4&transport=polling) through the web server, from
// --workers concurrent loops, --count in all, against three stacks:
//   none   max_sessions = 0, handshakes_per_second = 0 (nothing checked)
//   count  max_sessions = 1000000000 (one counter row read per handshake)
//   rate   handshakes_per_second = 1000000 (a token bucket read and written
//          per handshake, in the store, never refusing)
// each run --rounds times, in turn. Prints handshakes/s and latency p50/p99
// per stack and round. Numbers only, no assertion.
//
//   node tests/bench/handshakes.mjs [--count 3000] [--workers 8] [--rounds 2] [--server lighttpd]
//
// Environment: SG_BUILDDIR (default: the source tree). Every stack is
// stopped at the end of its round.

import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const here = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(here, "../..");
process.env.SG_SRCDIR ||= SRC;
const { startStack } = await import(join(SRC, "tests/integration/lib/stack.mjs"));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const COUNT = Number(arg("count", 3000));
const WORKERS = Number(arg("workers", 8));
const ROUNDS = Number(arg("rounds", 2));
if (arg("server")) process.env.SG_SERVER = arg("server");

const CONFS = {
  none: { max_sessions: 0, handshakes_per_second: 0 },
  count: { max_sessions: 1000000000, handshakes_per_second: 0 },
  rate: { max_sessions: 0, handshakes_per_second: 1000000 },
};

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function one(url, lat) {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
  const body = await res.text();
  if (res.status !== 200 || !body.startsWith("0{")) throw new Error(`handshake: ${res.status} ${body}`);
  lat.push(performance.now() - t0);
}

async function run(name) {
  const stack = await startStack({ fcgi: 1, conf: { ...CONFS[name], connect_timeout: 600000 } });
  try {
    const url = `${stack.url}${stack.path}?EIO=4&transport=polling`;
    for (let i = 0; i < 50; i++) await one(url, []); // warm up
    const lat = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (next++ < COUNT) await one(url, lat);
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `${name.padEnd(6)} ${(COUNT / secs).toFixed(0).padStart(6)} handshakes/s  ` +
        `p50 ${pct(lat, 50).toFixed(2)} ms  p99 ${pct(lat, 99).toFixed(2)} ms`,
    );
  } finally {
    await stack.stop();
  }
}

console.log(`${COUNT} polling handshakes, ${WORKERS} concurrent, server ${process.env.SG_SERVER || "lighttpd"}`);
for (let r = 0; r < ROUNDS; r++) for (const name of Object.keys(CONFS)) await run(name);
