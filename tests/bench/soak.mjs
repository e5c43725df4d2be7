#!/usr/bin/env node
// soak.mjs - churning clients against one stack with connection state
// recovery on, for minutes; prints what was sent, delivered and lost.
//
//   node tests/bench/soak.mjs [--minutes 10] [--clients 40] [--rate 20]
//                             [--kill-every 60] [--window 10000]
//                             [--server lighttpd]
//
// Starts contrib/stack (--fcgi 2 --wsd 2 --restart, the benchmark plugin
// tests/bench/bench_plugin.so, recovery_window --window ms; 0 leaves it
// off, to see what is lost without recovery) on a free
// loopback port. One sender (WebSocket) emits "broadcast" ["soak", N]
// with an ack --rate times a second; the plugin sends "tick" N to room
// "soak". --clients receivers are alive at any time, a third each on
// polling only, WebSocket only, and polling upgraded to WebSocket. Each
// joins "soak", lives 10-40 s, drops its connection every 2-8 s
// (socket.io.engine.close(): the server sees the transport close, the
// client reconnects with its pid and offset), then leaves for good and a
// new one takes its place. Every --kill-every seconds one siogate-fcgi or
// siogate-wsd process, in turn, is killed with SIGKILL (contrib/stack
// --restart starts it again).
//
// Counted for every receiver, over the broadcasts the sender had acked
// (so committed) from the first one sent after its join was acked to the
// last one acked before it started to leave: each missing tick is lost,
// each second copy a duplicate. A reconnect that comes back with
// socket.recovered false is counted, the receiver joins again, and what
// it missed meanwhile is counted apart ("lost_unrecovered"): recovery
// did not cover it. The store's size (database + WAL) is printed at the
// start and at the end, and its largest seen.
//
// Numbers only, no assertion; exit 0 when it ran to the end. Bounded in
// time (--minutes + 90 s at most), loopback only; everything started is
// stopped by pid.

import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { statSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

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
const MINUTES = Number(arg("minutes", 10));
const CLIENTS = Number(arg("clients", 40));
const RATE = Number(arg("rate", 20));
const KILL_EVERY_S = Number(arg("kill-every", 60));
const WINDOW_MS = Number(arg("window", 10000)); // 0: recovery off (the baseline)
if (arg("server")) process.env.SG_SERVER = arg("server");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rnd = (a, b) => a + Math.random() * (b - a);
const log = (s) => process.stderr.write(`soak: ${s}\n`);

const hardStop = setTimeout(() => {
  log("hard time limit reached; stopping");
  process.exit(2);
}, (MINUTES * 60 + 90) * 1000);
hardStop.unref();

function fileBytes(f) {
  try {
    return statSync(f).size;
  } catch {
    return 0; /* no WAL yet */
  }
}
const storeBytes = (db) => fileBytes(db) + fileBytes(`${db}-wal`);

const stats = {
  receivers: 0, // receivers started (sessions churned)
  drops: 0, // connections dropped on purpose
  recovered: 0, // reconnects with socket.recovered true
  not_recovered: 0, // reconnects with socket.recovered false
  sent: 0, // broadcasts emitted
  acked: 0, // broadcasts the server acked (committed)
  unacked: 0, // no ack within 5 s (not counted either way)
  expected: 0, // (receiver, acked broadcast) pairs that had to arrive
  delivered: 0,
  lost: 0,
  lost_unrecovered: 0,
  duplicates: 0,
  kills: 0,
};

const sentAt = new Map(); // N -> time the sender emitted it
const acked = new Set(); // N the server acked (committed)
let highestAcked = -1;

function opts(stack, kind) {
  const transports = kind === 0 ? ["polling"] : kind === 1 ? ["websocket"] : ["polling", "websocket"];
  return {
    path: stack.path,
    transports,
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
    randomizationFactor: 0.3,
    timeout: 10000,
  };
}

/** One receiver's life: join, drops, leave; adds to stats. */
async function receiver(stack, id, until) {
  stats.receivers++;
  const s = io(stack.url, opts(stack, id % 3));
  const seen = new Set();
  let joinedAt = Infinity; // a broadcast sent after this time counts
  let lastSeenSent = 0; // when the newest tick it has was sent
  const broken = []; // [t0, t1]: sent then, not covered by recovery
  s.on("tick", (n) => {
    if (seen.has(n)) stats.duplicates++;
    else seen.add(n);
    lastSeenSent = Math.max(lastSeenSent, sentAt.get(n) ?? 0);
  });
  const join = async () => {
    await s.timeout(10000).emitWithAck("join", "soak");
    return Date.now();
  };
  let first = true;
  const events = []; // [what, when], for SOAK_DEBUG
  s.on("disconnect", (r) => events.push([`disconnect ${r}`, Date.now()]));
  s.on("connect", () => {
    events.push([`connect recovered=${s.recovered}`, Date.now()]);
    if (first) {
      first = false;
      return;
    }
    if (s.recovered) stats.recovered++;
    else {
      stats.not_recovered++;
      // what it missed: all sent after the newest tick it had, until the
      // join is acked again
      const span = [lastSeenSent + 1, Infinity];
      broken.push(span);
      join().then((t) => (span[1] = t), () => {});
    }
  });
  try {
    await new Promise((res, rej) => {
      s.once("connect", res);
      s.once("connect_error", rej);
    });
    joinedAt = await join();
  } catch (e) {
    log(`receiver ${id}: could not join: ${e.message}`);
    s.close();
    return;
  }
  const end = Math.min(until, Date.now() + rnd(10000, 40000));
  while (Date.now() < end) {
    await sleep(Math.min(rnd(2000, 8000), Math.max(0, end - Date.now())));
    if (Date.now() >= end) break;
    if (s.connected) {
      stats.drops++;
      events.push(["drop", Date.now()]);
      s.io.engine.close();
    }
  }
  // the broadcasts that count: sent after the join was acked (so
  // committed after it), acked, up to now
  const last = highestAcked;
  const want = [];
  for (const [n, t] of sentAt) if (t > joinedAt && n <= last && acked.has(n)) want.push(n);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && want.some((n) => !seen.has(n))) await sleep(50);
  s.close();
  for (const n of want) {
    stats.expected++;
    if (seen.has(n)) stats.delivered++;
    else if (broken.some(([a, b]) => sentAt.get(n) >= a && sentAt.get(n) <= b)) stats.lost_unrecovered++;
    else {
      stats.lost++;
      if (process.env.SOAK_DEBUG)
        log(`lost: receiver ${id} kind ${id % 3} tick ${n} sent ${sentAt.get(n) - joinedAt} ms after the join; ` +
            `events ${JSON.stringify(events.map(([w, t]) => [w, t - joinedAt]))}`);
    }
  }
}

async function sender(stack, until) {
  const s = io(stack.url, { ...opts(stack, 1), reconnectionDelayMax: 500 });
  await new Promise((res, rej) => {
    s.once("connect", res);
    s.once("connect_error", rej);
  });
  const pending = [];
  for (let n = 0; Date.now() < until; n++) {
    stats.sent++;
    sentAt.set(n, Date.now());
    pending.push(
      s
        .timeout(5000)
        .emitWithAck("broadcast", "soak", n)
        .then(
          () => {
            stats.acked++;
            acked.add(n);
            if (n > highestAcked) highestAcked = n;
          },
          () => stats.unacked++,
        ),
    );
    await sleep(1000 / RATE);
  }
  await Promise.all(pending);
  s.close();
}

async function killer(stack, until) {
  for (let k = 0; ; k++) {
    await sleep(KILL_EVERY_S * 1000);
    if (Date.now() >= until) return;
    const ds = stack.daemons();
    if (!ds.length) continue;
    const d = ds[k % ds.length];
    try {
      process.kill(d.pid, "SIGKILL");
      stats.kills++;
      log(`SIGKILL ${d.name} ${d.pid}`);
    } catch {
      /* already gone */
    }
  }
}

async function main() {
  const stack = await startStack({
    fcgi: 2,
    wsd: 2,
    restart: true,
    conf: {
      plugin: join(BUILDDIR, "tests/bench/bench_plugin.so"),
      ...(WINDOW_MS > 0 ? { recovery_window: WINDOW_MS } : {}),
    },
  });
  const t0 = Date.now();
  const until = t0 + MINUTES * 60 * 1000;
  const dbStart = storeBytes(stack.db);
  let dbMax = dbStart;
  const sizer = setInterval(() => (dbMax = Math.max(dbMax, storeBytes(stack.db))), 1000);
  try {
    const send = sender(stack, until);
    const kill = KILL_EVERY_S > 0 ? killer(stack, until) : Promise.resolve();
    const slots = [];
    for (let i = 0; i < CLIENTS; i++) {
      slots.push(
        (async () => {
          await sleep(rnd(0, 5000));
          for (let id = i; Date.now() < until - 5000; id += CLIENTS) await receiver(stack, id, until);
        })(),
      );
    }
    const progress = setInterval(() => {
      const mb = (f) => (fileBytes(f) / 1048576).toFixed(2);
      log(JSON.stringify({ s: Math.round((Date.now() - t0) / 1000), ...stats, db_mb: mb(stack.db), wal_mb: mb(`${stack.db}-wal`) }));
    }, 30000);
    await Promise.all([send, ...slots]);
    clearInterval(progress);
    await kill.catch(() => {});
    stack.assertAlive();
  } finally {
    clearInterval(sizer);
    const dbEnd = storeBytes(stack.db);
    await stack.stop();
    const mb = (b) => (b / 1048576).toFixed(2);
    const line = Object.entries(stats)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    console.log(
      `soak: ${MINUTES} min, ${CLIENTS} receivers at a time, ${RATE} broadcasts/s, recovery_window ${WINDOW_MS} ms, ` +
        `server ${process.env.SG_SERVER || "lighttpd"}`,
    );
    console.log(`${line} db_start_mb=${mb(dbStart)} db_max_mb=${mb(dbMax)} db_end_mb=${mb(dbEnd)}`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
