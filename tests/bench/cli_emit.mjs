#!/usr/bin/env node
// cli_emit.mjs - benchmark: time from `siogate emit` starting to a held
// polling client receiving the event, process start included.
//
//   node tests/bench/cli_emit.mjs [--runs 200] [--server lighttpd]
//
// Starts contrib/stack (lighttpd, one siogate-fcgi, plugin echo) on a free
// loopback port, connects one socket.io-client polling client, puts it in
// a room with `siogate join`, then --runs times: waits until the client's
// GET is held again (20 ms after the previous event), starts
// `siogate --conf FILE emit --to bench tick N` and takes the time until
// the client's "tick" handler sees N. Prints the p50/p99/max of that, and
// of two references measured the same way: how long the CLI process takes
// from spawn to exit, and how long spawning /bin/true takes from this
// Node process (the share of the numbers that is the harness, not
// siogate). Numbers only, no assertion.
//
// Environment: SG_BUILDDIR (default: the source tree). Everything started
// is stopped at the end (the stack by pid, SIGTERM).

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const here = dirname(fileURLToPath(import.meta.url));
const SRC = resolve(here, "../..");
process.env.SG_SRCDIR ||= SRC;
const require = createRequire(join(SRC, "tests/integration/package.json"));
const { io } = require("socket.io-client");
const { startStack, BUILDDIR } = await import(join(SRC, "tests/integration/lib/stack.mjs"));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const RUNS = Number(arg("runs", 200));
if (arg("server")) process.env.SG_SERVER = arg("server");
const SIOGATE = join(BUILDDIR, "gateway", "siogate");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns cmd; resolves with the ms from spawn to exit (rejects on failure). */
function run(cmd, args) {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    p.on("error", rej);
    p.on("exit", (code) => (code === 0 ? res(performance.now() - t0) : rej(new Error(`${cmd} ${args.join(" ")}: exit ${code}`))));
  });
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms  max ${Math.max(...xs).toFixed(2)} ms`;

async function main() {
  const stack = await startStack({ fcgi: 1 });
  const conf = join(stack.dir, "siogate.conf");
  const socket = io(stack.url, { path: stack.path, transports: ["polling"], forceNew: true, reconnection: false });
  try {
    await new Promise((r, j) => {
      socket.once("connect", r);
      socket.once("connect_error", j);
    });
    await run(SIOGATE, ["--conf", conf, "join", "--socket", socket.id, "bench"]);
    let waiting = null;
    socket.on("tick", (n) => {
      if (waiting && waiting.n === n) waiting.resolve(performance.now());
    });
    const deliver = [],
      cliExit = [],
      spawnTrue = [];
    for (let n = 0; n < RUNS; n++) {
      await sleep(20); // the client's next GET is held by now
      const got = new Promise((resolve) => (waiting = { n, resolve }));
      const t0 = performance.now();
      const exited = run(SIOGATE, ["--conf", conf, "emit", "--to", "bench", "tick", String(n)]);
      let timer;
      const t1 = await Promise.race([got, new Promise((_, j) => (timer = setTimeout(() => j(new Error(`run ${n}: no event within 5 s`)), 5000)))]);
      clearTimeout(timer);
      deliver.push(t1 - t0);
      cliExit.push(await exited);
    }
    for (let n = 0; n < RUNS; n++) spawnTrue.push(await run("/bin/true", []));
    console.log(`cli_emit: ${RUNS} runs, 1 held polling client behind ${process.env.SG_SERVER || "lighttpd"}`);
    console.log(`  emit start -> client has the event: ${fmt(deliver)}`);
    console.log(`  emit start -> siogate exited:       ${fmt(cliExit)}`);
    console.log(`  spawn /bin/true -> exited (harness): ${fmt(spawnTrue)}`);
  } finally {
    socket.close();
    await stack.stop();
  }
}

main().catch((e) => {
  console.error(`cli_emit: ${e.stack || e}`);
  process.exit(1);
});
