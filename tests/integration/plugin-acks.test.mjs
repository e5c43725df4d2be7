// Acknowledgements both ways through the real stack (tests/plugins/features.c):
// client-to-server acks with JSON and binary arguments (host->ack,
// binary_new, binary_data); server-to-client acks with emit_with_ack and a
// named ack handler: the reply (JSON, binary, none), the reply arriving in
// the other fcgi process, several in flight, and the timeout.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { closeClient, closeAllClients, emitAck, nextOn } from "./lib/client.mjs";
import { SKIP_REFERENCE as skip, startFeaturesStack, connectF, shift } from "./lib/features.mjs";
import { toBuffer, sleep, collectEvents } from "./lib/util.mjs";

const T = { timeout: 60000, skip };

let stack, socket;
before(async () => {
  if (skip) return;
  stack = await startFeaturesStack({ fcgi: 2 });
  ({ socket } = await connectF(stack));
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

// ---- client to server ------------------------------------------------------------

test("client->server ack: JSON arguments come back as given", T, async () => {
  const args = [1, "two", { three: [3] }, null, true, "é😀"];
  const [lens, rev, echoed] = await emitAck(socket, "binary-ack", args);
  assert.deepEqual(lens, [null, null, null, null, null, null], "binary_data() is NULL for JSON values");
  assert.equal(rev, null);
  assert.deepEqual(echoed, args);
});

test("client->server ack: binary arguments read with binary_data, answered with binary_new", T, async () => {
  const a = Buffer.from([1, 2, 3, 0, 255]);
  const big = Buffer.alloc(40000, 7);
  const [lens, rev, echoed] = await emitAck(socket, "binary-ack", [a, "text", big, Buffer.alloc(0)]);
  assert.deepEqual(lens, [5, null, 40000, 0]);
  assert.ok(toBuffer(rev).equals(Buffer.from([255, 0, 3, 2, 1])), "first binary reversed");
  assert.ok(toBuffer(echoed[0]).equals(a));
  assert.equal(echoed[1], "text");
  assert.ok(toBuffer(echoed[2]).equals(big));
  assert.equal(toBuffer(echoed[3]).length, 0);
});

test("client->server ack: nested binary is not a top-level binary value", T, async () => {
  const [lens, rev, echoed] = await emitAck(socket, "binary-ack", [{ b: Buffer.from("x") }]);
  assert.deepEqual(lens, [null]);
  assert.equal(rev, null);
  assert.ok(toBuffer(echoed[0].b).equals(Buffer.from("x")));
});

// ---- server to client -------------------------------------------------------------

/** Answers every "q" with reply(args) (after `before`, if given). */
function answer(s, reply, { before: pre } = {}) {
  const h = async (...args) => {
    const cb = args.pop();
    if (pre) await pre();
    cb(...reply(args));
  };
  s.on("q", h);
  return () => s.off("q", h);
}

test("server->client ack: the reply reaches the ack handler with the emitter's data", T, async () => {
  const stop = answer(socket, (args) => ["answer", { got: args }]);
  try {
    const reply = nextOn(socket, "asked-reply", 10000);
    const [rc] = await emitAck(socket, "ask", [{ event: "q", args: [1, "x"], data: { tag: "t1", n: [1] }, timeout: 5000 }]);
    assert.equal(rc, 0);
    const [r] = await reply;
    assert.deepEqual(r.args, ["answer", { got: [1, "x"] }]);
    assert.deepEqual(r.data, { tag: "t1", n: [1] });
  } finally {
    stop();
  }
});

test("server->client ack: no data attached arrives as null; an empty reply as []", T, async () => {
  const stop = answer(socket, () => []);
  try {
    const reply = nextOn(socket, "asked-reply", 10000);
    await emitAck(socket, "ask", [{ event: "q", timeout: 5000 }]);
    const [r] = await reply;
    assert.deepEqual(r.args, []);
    assert.equal(r.data, null);
  } finally {
    stop();
  }
});

test("server->client ack: a binary reply", T, async () => {
  const bytes = Buffer.from([9, 8, 7, 0, 255]);
  const stop = answer(socket, () => [bytes, { inner: Buffer.from("in") }]);
  try {
    const reply = nextOn(socket, "asked-reply", 10000);
    await emitAck(socket, "ask", [{ event: "q", timeout: 5000 }]);
    const [r] = await reply;
    assert.ok(toBuffer(r.args[0]).equals(bytes));
    assert.ok(toBuffer(r.args[1].inner).equals(Buffer.from("in")));
  } finally {
    stop();
  }
});

test("server->client ack: the reply is handled by the other fcgi process", T, async () => {
  // the reply's POST follows a request of somebody else: the round-robin
  // sends it to the other process (tried a few times, both ways)
  const stop = answer(socket, (args) => args, { before: () => shift(stack) });
  try {
    const crossed = [];
    for (let i = 0; i < 4 && crossed.length === 0; i++) {
      const reply = nextOn(socket, "asked-reply", 10000);
      const [rc, askPid] = await emitAck(socket, "ask", [{ event: "q", args: [i], data: i, timeout: 5000 }]);
      assert.equal(rc, 0);
      const [r] = await reply;
      assert.deepEqual(r.args, [i]);
      assert.equal(r.data, i);
      if (r.pid !== askPid) crossed.push([askPid, r.pid]);
      await shift(stack);
    }
    assert.equal(crossed.length, 1, "one reply was handled in another process than its question");
  } finally {
    stop();
  }
});

test("server->client ack: several in flight are matched to their own question", T, async () => {
  const pending = [];
  const h = (...args) => pending.push(args);
  socket.on("q", h);
  try {
    const n = 5;
    const replies = collectEvents(socket, "asked-reply", n, 15000);
    for (let i = 0; i < n; i++) await emitAck(socket, "ask", [{ event: "q", args: [i], data: { i }, timeout: 10000 }]);
    // answer in reverse order
    while (pending.length < n) await sleep(10);
    for (const args of [...pending].reverse()) {
      const cb = args.pop();
      cb(`reply-${args[0]}`);
    }
    const got = (await replies).map(([r]) => [r.data.i, r.args[0]]);
    assert.deepEqual(got.sort((a, b) => a[0] - b[0]), Array.from({ length: n }, (_, i) => [i, `reply-${i}`]));
  } finally {
    socket.off("q", h);
  }
});

test("server->client ack: no reply within the timeout calls the handler with args NULL, once", T, async () => {
  const late = [];
  const h = (...args) => late.push(args.pop());
  socket.on("q", h);
  let replies = 0;
  const r = () => replies++;
  socket.on("asked-reply", r);
  try {
    const timedOut = nextOn(socket, "asked-timeout", 10000);
    const t0 = Date.now();
    await emitAck(socket, "ask", [{ event: "q", data: { tag: "slow" }, timeout: 300 }]);
    const [t] = await timedOut;
    assert.deepEqual(t.data, { tag: "slow" });
    assert.ok(Date.now() - t0 >= 250, `timed out after ${Date.now() - t0} ms`);
    // a reply after the timeout is dropped
    late.forEach((cb) => cb("too late"));
    await emitAck(socket, "whoami", []);
    await sleep(500);
    assert.equal(replies, 0, "no asked-reply after the timeout");
  } finally {
    socket.off("q", h);
    socket.off("asked-reply", r);
  }
});

test("server->client ack: a socket that leaves before replying gets its handler run (timeout)", T, async () => {
  const { socket: s } = await connectF(stack);
  s.on("q", () => {}); // never answers
  await emitAck(s, "ask", [{ event: "q", timeout: 300 }]);
  closeClient(s);
  // "exactly once per emit_with_ack": the handler runs with a context whose
  // socket is gone, so its emit of "asked-timeout" fails and is logged
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !/emit 'asked-timeout': the socket is gone/.test(stack.stderr())) await sleep(50);
  assert.match(stack.stderr(), /features\.so: emit 'asked-timeout': the socket is gone/);
  stack.assertAlive();
  assert.equal((await emitAck(socket, "whoami", []))[0].id, socket.id);
});
