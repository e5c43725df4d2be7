// Both transports through the web server in front (SG_SERVER: lighttpd,
// nginx or apache): polling then the upgrade (the clients' default),
// WebSocket only, and python-socketio over each; and the upgrade under a
// stream of broadcasts, which must lose and duplicate nothing.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { IS_REFERENCE } from "./lib/stack.mjs";
import { makeClient, whenConnected, closeAllClients, emitAck, nextOn } from "./lib/client.mjs";
import { startFeaturesStack, connectF } from "./lib/features.mjs";
import { withTimeout, sleep } from "./lib/util.mjs";
import { handshake, send, poll, packets } from "./lib/eio.mjs";
import WebSocket from "ws";
import { pythonSkip, pythonEcho } from "./lib/python.mjs";

const T = { timeout: 60000 };
const BOTH = { transports: ["polling", "websocket"] };
const WS = { transports: ["websocket"] };

let stack;
before(async () => {
  // two of each: any process may serve any session
  if (!IS_REFERENCE) stack = await startFeaturesStack({ fcgi: 2, wsd: 2 });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

/** Resolves when the client's Engine.IO connection has upgraded. */
function upgraded(socket, ms = 10000) {
  const engine = socket.io.engine;
  if (engine && engine.transport && engine.transport.name === "websocket")
    return Promise.resolve();
  return withTimeout(
    new Promise((resolve) => socket.io.engine.once("upgrade", () => resolve())),
    ms,
    "the upgrade to websocket",
  );
}

test("default transports: polling first, then the upgrade; events both ways", T, async (t) => {
  if (IS_REFERENCE) return t.skip("siogate stack only");
  const socket = makeClient(stack, "/", BOTH);
  const up = new Promise((resolve) => socket.io.on("open", () => resolve(upgraded(socket))));
  await whenConnected(socket);
  assert.equal(socket.io.engine.transport.name === "polling" || socket.io.engine.transport.name === "websocket", true);
  await up;
  assert.equal(socket.io.engine.transport.name, "websocket");
  assert.deepEqual(await emitAck(socket, "message-with-ack", ["after", { upgrade: 1 }]), [
    "after",
    { upgrade: 1 },
  ]);
  const back = nextOn(socket, "message-back");
  socket.emit("message", Buffer.from([9, 8, 7]));
  const [buf] = await back;
  assert.deepEqual([...buf], [9, 8, 7]);
});

test("WebSocket only: no polling at all; auth, echo, binary ack", T, async (t) => {
  if (IS_REFERENCE) return t.skip("siogate stack only");
  const socket = makeClient(stack, "/", { ...WS, auth: { ws: true } });
  const auth = nextOn(socket, "auth");
  await whenConnected(socket);
  assert.equal(socket.io.engine.transport.name, "websocket");
  assert.deepEqual(await auth, [{ ws: true }]);
  const [back] = await emitAck(socket, "message-with-ack", [Buffer.from("bin")]);
  assert.equal(Buffer.from(back).toString(), "bin");
});

test("upgrade under a broadcast stream: every packet once, in order", T, async (t) => {
  if (IS_REFERENCE) return t.skip("siogate stack only");
  const N = 300;
  // The receiver is driven by hand, so that the upgrade surely happens in
  // the middle of the stream: it polls until some ticks came over polling,
  // then probes a WebSocket, lets its last GET return, sends "5", and reads
  // the rest over the WebSocket.
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40/f,")).status, 200);
  const got = [];
  const take = (pkt) => {
    const m = /^42\/f,\["tick",(\d+)\]$/.exec(pkt);
    if (m) got.push(Number(m[1]));
  };
  // the sender: another session, polling, broadcasting to "/f" but itself
  const { socket: tx } = await connectF(stack, "/f");
  const stream = (async () => {
    for (let i = 0; i < N; i++)
      await emitAck(tx, "emit-to", [{ event: "tick", args: [i], broadcast: true }]);
  })();
  let upgradedAt = -1;
  const deadline = Date.now() + 20000;
  while (got.length < 20 && Date.now() < deadline) {
    const r = await poll(stack, sid);
    assert.equal(r.status, 200);
    packets(r.body).forEach(take);
  }
  assert.ok(got.length >= 20, `ticks over polling: ${got.length}`);
  // probe while a GET is held
  const held = poll(stack, sid);
  const ws = new WebSocket(`${stack.url.replace("http", "ws")}${stack.path}?EIO=4&transport=websocket&sid=${sid}`);
  const wsQueue = [];
  let wsWaiter = null;
  ws.on("message", (data, isBinary) => {
    wsQueue.push(isBinary ? data : data.toString());
    if (wsWaiter) wsWaiter();
  });
  const nextWs = () =>
    withTimeout(
      new Promise((resolve) => {
        const go = () => {
          wsWaiter = null;
          resolve(wsQueue.shift());
        };
        if (wsQueue.length) go();
        else wsWaiter = go;
      }),
      5000,
      "a WebSocket message",
    );
  await withTimeout(new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject)), 5000, "ws open");
  ws.send("2probe");
  assert.equal(await nextWs(), "3probe");
  // the held GET returns (with ticks, or noop once the probe is known);
  // GETs until a noop: then polling is paused, as the client does
  for (let body = (await held).body; ; body = (await poll(stack, sid)).body) {
    const p = packets(body);
    p.forEach(take);
    if (p.includes("6")) break;
  }
  upgradedAt = got.length;
  ws.send("5");
  while (got[got.length - 1] !== N - 1) {
    const m = await nextWs();
    if (m === "2") ws.send("3");
    else take(m);
  }
  await withTimeout(stream, 30000, "the stream");
  await sleep(300); // a duplicate would arrive now
  while (wsQueue.length) take(wsQueue.shift());
  ws.close();
  assert.ok(upgradedAt < N - 1, `the upgrade came during the stream (at ${upgradedAt} of ${N})`);
  // from the first tick it saw, every one exactly once and in order
  assert.deepEqual(got, Array.from({ length: got.length }, (_, k) => got[0] + k));
  assert.equal(got[got.length - 1], N - 1);
});

for (const transport of ["polling", "websocket"]) {
  test(`python-socketio over ${transport}: connect, auth, echo with binary, ack`, T, async (t) => {
    if (IS_REFERENCE) return t.skip("siogate stack only");
    const skip = pythonSkip();
    if (skip) return t.skip(skip);
    const r = await pythonEcho(stack.url, stack.path, transport);
    assert.equal(r.code, 0, r.err);
    const out = r.out;
    assert.equal(out.transport, transport);
    assert.deepEqual(out.auth, { py: transport });
    assert.equal(out.ack, "py ack");
    assert.deepEqual(out.back, ["from python", 3, [0, 1]]);
  });
}

test("two siogate-wsd: WebSocket sessions on both, a broadcast reaches every one", T, async (t) => {
  if (IS_REFERENCE) return t.skip("siogate stack only");
  const n = 6; // the web server spreads them over both daemons
  const rx = [];
  for (let i = 0; i < n; i++) {
    const { socket } = await connectF(stack, "/f", WS);
    rx.push(socket);
  }
  const pids = new Set();
  for (const s of rx) pids.add((await emitAck(s, "whoami", []))[0].pid);
  // whoami is answered by whichever process got the packet: the daemon
  // that holds the WebSocket
  assert.equal(pids.size, 2, `sessions on both daemons: ${[...pids]}`);
  const got = rx.map((s) => nextOn(s, "news"));
  const { socket: tx } = await connectF(stack, "/f"); // polling: via siogate-fcgi
  const [count] = await emitAck(tx, "emit-to", [{ event: "news", args: ["hi"], broadcast: true }]);
  assert.ok(count >= n, `reached ${count}`);
  for (const g of got) assert.deepEqual(await g, ["hi"]);
});
