// The broadcast log (broadcast_log_min = 0 here: every broadcast is one
// log row per frame, not a row per recipient): a room broadcast reaches
// exactly the members at the emit (a socket that joins after it does not
// get it, one that leaves after it still does, in order with its own
// frames), except and skip, binary arguments, polling and WebSocket
// receivers on several processes (300 WebSockets at once too), `siogate
// emit --to`, and the store holds one row per frame, not one per
// recipient.
//
// Raw Engine.IO sessions (lib/eio.mjs) make the timing deterministic: a
// session that sends no GET takes nothing, so its membership can change
// between a broadcast and its next take.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { closeAllClients, closeClient, emitAck, nextOn } from "./lib/client.mjs";
import { SKIP_REFERENCE as skip, startFeaturesStack, connectF } from "./lib/features.mjs";
import { BUILDDIR } from "./lib/stack.mjs";
import { storeQuery } from "./lib/store.mjs";
import { handshake, send, collect } from "./lib/eio.mjs";
import { toBuffer, withTimeout } from "./lib/util.mjs";

const T = { timeout: 60000, skip };
const WS = { transports: ["websocket"] };
const SIOGATE = join(BUILDDIR, "gateway", "siogate");

let stack;
before(async () => {
  if (!skip) stack = await startFeaturesStack({ fcgi: 2, wsd: 2, conf: { broadcast_log_min: 0 } });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

/** A raw polling session connected to "/f": {sid, id, ack(event, ...args)}. */
async function rawF() {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40/f,")).status, 200);
  const { packets } = await collect(stack, sid, 2, 5000);
  const m = /^40\/f,\{"sid":"([^"]+)"\}$/.exec(packets[0]);
  assert.ok(m, `CONNECT reply: ${packets[0]}`);
  assert.match(packets[1], /^42\/f,\["hello",/);
  let next = 0;
  return {
    sid,
    id: m[1],
    /** Sends an event with an ack id; returns the id (the GET answers it). */
    async send(event, ...args) {
      const n = next++;
      const res = await send(stack, sid, `42/f,${n}${JSON.stringify([event, ...args])}`);
      assert.equal(res.status, 200);
      return n;
    },
    /** The next n packets (noops left out). */
    async take(n) {
      return (await collect(stack, sid, n, 5000)).packets;
    },
  };
}

/**
 * Every socket of rx keeps what map(...args) makes of each `event` it gets
 * (got[i]; it keeps listening, so a later duplicate shows there); wait(ms)
 * resolves once each has n, or rejects after ms saying how many fell short.
 */
function collectAll(rx, event, n, map) {
  const got = rx.map(() => []);
  const done = rx.map(
    (s, i) =>
      new Promise((resolve) =>
        s.on(event, (...args) => {
          got[i].push(map(...args));
          if (got[i].length === n) resolve();
        }),
      ),
  );
  const wait = (ms) =>
    withTimeout(Promise.all(done), ms, `${rx.length} receivers x ${n} "${event}"`).catch((e) => {
      e.message += ` (${got.filter((g) => g.length < n).length} short: ${got.map((g) => g.length)})`;
      throw e;
    });
  return { got, wait };
}

const ev = (event, ...args) => `42/f,${JSON.stringify([event, ...args])}`;

/** The log rows of the store (sid ''), counted with its own shell. */
async function logRows() {
  return Number(await storeQuery(stack.db, "SELECT count(*) FROM queue WHERE sid = ''"));
}

test("membership at the emit: join after it does not get it, leave after it does, in order", T, async () => {
  const [a, b, c, tx] = [await rawF(), await rawF(), await rawF(), await rawF()];
  for (const s of [a, b]) {
    const n = await s.send("join", "r");
    assert.match((await s.take(1))[0], new RegExp(`^43/f,${n}\\[`));
  }
  // a frame of a's own before the broadcast, one after
  await a.send("echo", "before");
  const n = await tx.send("emit-to", { rooms: ["r"], event: "news", args: [1] });
  assert.deepEqual(await tx.take(1), [`43/f,${n}[2]`], "emit_to counts the members");
  assert.ok((await logRows()) >= 1, "the broadcast is in the log, not one row per member");
  await a.send("echo", "after");
  const nc = await c.send("join", "r"); // joins after the emit
  const nb = await b.send("leave", "r"); // leaves after the emit
  assert.deepEqual(await a.take(3), [ev("echo", "before"), ev("news", 1), ev("echo", "after")]);
  const gotB = await b.take(2);
  assert.equal(gotB[0], ev("news", 1), "a member at the emit that left since still gets it, first");
  assert.match(gotB[1], new RegExp(`^43/f,${nb}\\[`));
  const gotC = await c.take(1);
  assert.match(gotC[0], new RegExp(`^43/f,${nc}\\[`), `joined after the emit: only its ack (${gotC})`);
  // the next broadcast follows the membership of now
  const m = await tx.send("emit-to", { rooms: ["r"], event: "news", args: [2] });
  assert.deepEqual(await tx.take(1), [`43/f,${m}[2]`]);
  assert.deepEqual(await a.take(1), [ev("news", 2)]);
  assert.deepEqual(await c.take(1), [ev("news", 2)]);
  await b.send("echo", "sync"); // b must not have it: its next frame is the echo
  assert.deepEqual(await b.take(1), [ev("echo", "sync")]);
  // c got nothing twice: its next frame is its own echo
  await c.send("echo", "sync");
  assert.deepEqual(await c.take(1), [ev("echo", "sync")]);
});

test("a socket that disconnects after the emit still gets it, then the disconnect", T, async () => {
  const [a, tx] = [await rawF(), await rawF()];
  await a.send("join", "gone-room");
  await a.take(1);
  const n = await tx.send("emit-to", { rooms: ["gone-room"], event: "bye", args: [] });
  assert.deepEqual(await tx.take(1), [`43/f,${n}[1]`]);
  const k = await a.send("kick", {}); // the server disconnects the socket
  const got = await a.take(3);
  assert.deepEqual(got.slice(0, 2), [ev("bye"), `43/f,${k}[]`]);
  assert.equal(got[2], "41/f,");
});

test("except and skip (broadcast from a member) are honoured", T, async () => {
  const [a, b, c, d] = [await rawF(), await rawF(), await rawF(), await rawF()];
  for (const [s, rooms] of [[a, ["x"]], [b, ["x", "mute"]], [c, ["x"]], [d, []]]) {
    if (rooms.length) {
      await s.send("join", rooms);
      await s.take(1);
    }
  }
  const n = await a.send("emit-to", { rooms: ["x"], except: ["mute"], broadcast: true, event: "x", args: ["hi"] });
  assert.deepEqual(await a.take(1), [`43/f,${n}[1]`], "only c: a is the sender, b is muted");
  assert.deepEqual(await c.take(1), [ev("x", "hi")]);
  for (const s of [a, b, d]) {
    await s.send("echo", "sync");
    assert.deepEqual(await s.take(1), [ev("echo", "sync")]);
  }
});

test("binary broadcasts to polling and WebSocket receivers on every process, in order, once", T, async () => {
  const rx = [];
  for (let i = 0; i < 4; i++) rx.push((await connectF(stack, "/f")).socket);
  for (let i = 0; i < 4; i++) rx.push((await connectF(stack, "/f", WS)).socket);
  for (const s of rx) await emitAck(s, "join", ["bin"]);
  const { socket: tx } = await connectF(stack, "/f");
  const N = 20;
  const { got, wait } = collectAll(rx, "blob", N, (k, buf) => [k, [...toBuffer(buf)]]);
  for (let k = 0; k < N; k++) {
    const [count] = await emitAck(tx, "emit-to", [
      { rooms: ["bin"], event: "blob", args: [k, Buffer.from([k, 255 - k, 7])] },
    ]);
    assert.equal(count, rx.length);
  }
  await wait(20000);
  const want = Array.from({ length: N }, (_, k) => [k, [k, 255 - k, 7]]);
  for (const g of got) assert.deepEqual(g, want);
  // exactly once: a round trip later nothing more came
  for (const s of rx) await emitAck(s, "rooms", []);
  for (const g of got) assert.equal(g.length, N);
});

test("a broadcast to more WebSockets than a transaction takes: all of them, in order, once", T, async () => {
  // siogate-wsd commits and writes every 128 takes (TAKES_PER_COMMIT): 300
  // receivers over its two processes make each take more than that in one
  // turn of the loop
  const M = 300;
  const N = 5;
  const rx = [];
  for (let i = 0; i < M; i++) rx.push((await connectF(stack, "/f", WS)).socket);
  await Promise.all(rx.map((s) => emitAck(s, "join", ["many"])));
  const { got, wait } = collectAll(rx, "wave", N, (k) => k);
  const { socket: tx } = await connectF(stack, "/f", WS);
  for (let k = 0; k < N; k++) {
    const [count] = await emitAck(tx, "emit-to", [{ rooms: ["many"], event: "wave", args: [k] }]);
    assert.equal(count, M);
  }
  await wait(30000);
  for (const s of rx) await emitAck(s, "rooms", []);
  const want = Array.from({ length: N }, (_, k) => k);
  for (const g of got) assert.deepEqual(g, want);
  for (const s of [...rx, tx]) s.disconnect();
});

test("a process with few sessions among a broadcast's many recipients asks about its own: every recipient gets it, in order, once", T, async () => {
  // broadcast_log_min 80: a process with at most 10 sessions of its own
  // asks the log about those by name (engine.c, own_sessions) instead of
  // listing every recipient. 90 WebSockets and 10 polls (siogate-fcgi
  // asks, siogate-wsd lists), then 10 and 90 (the other way round). Each
  // held GET waits for the ring (or the safety re-check, which asks too):
  // a process that missed its own would leave them to the next ping, 25 s.
  const few = await startFeaturesStack({ fcgi: 1, wsd: 1, conf: { broadcast_log_min: 80 } });
  const POLL = { transports: ["polling"] };
  const N = 5;
  try {
    for (const [nws, npoll, room] of [[90, 10, "wide-a"], [10, 90, "wide-b"]]) {
      const rx = [];
      for (let i = 0; i < nws; i++) rx.push((await connectF(few, "/f", WS)).socket);
      for (let i = 0; i < npoll; i++) rx.push((await connectF(few, "/f", POLL)).socket);
      await Promise.all(rx.map((s) => emitAck(s, "join", [room])));
      const { got, wait } = collectAll(rx, "wave", N, (k) => k);
      // the sender on the side that lists, so the other keeps its 10
      const { socket: tx } = await connectF(few, "/f", nws > npoll ? WS : POLL);
      for (let k = 0; k < N; k++) {
        const [count] = await emitAck(tx, "emit-to", [{ rooms: [room], event: "wave", args: [k] }]);
        assert.equal(count, rx.length);
      }
      await wait(20000);
      for (const s of rx) await emitAck(s, "rooms", []);
      const want = Array.from({ length: N }, (_, k) => k);
      for (const g of got) assert.deepEqual(g, want);
      for (const s of [...rx, tx]) closeClient(s);
    }
  } finally {
    await few.stop();
  }
});

test("siogate emit --to goes through the log and wakes held polls and WebSockets", T, async () => {
  const { socket: p } = await connectF(stack, "/f");
  const { socket: w } = await connectF(stack, "/f", WS);
  await emitAck(p, "join", ["cli-room"]);
  await emitAck(w, "join", ["cli-room"]);
  const gotP = nextOn(p, "from-cli", 10000);
  const gotW = nextOn(w, "from-cli", 10000);
  const out = await new Promise((resolve, reject) => {
    const c = spawn(SIOGATE, ["--conf", join(stack.dir, "siogate.conf"), "emit", "-v", "--nsp", "/f", "--to", "cli-room", "from-cli", '"hi"']);
    let text = "";
    c.stdout.on("data", (d) => (text += d));
    c.on("error", reject);
    c.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`siogate emit: exit ${code}`))));
  });
  assert.match(out, /\b2\b/, `reached 2: ${out}`);
  assert.deepEqual(await gotP, ["hi"]);
  assert.deepEqual(await gotW, ["hi"]);
});
