// Two siogate-fcgi processes behind one web server: lighttpd spreads the
// requests of one session over both, so a packet is often produced by one
// process while the other one holds the session's GET. Nothing may be lost
// or reordered. (siogate only: skipped with SG_TARGET=reference unless
// SG_REFERENCE_MULTIPROCESS=1, which runs the same exchange against the
// reference server to check the test itself.)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, IS_REFERENCE } from "./lib/stack.mjs";
import { connectClient, closeClient, closeAllClients, emitAck } from "./lib/client.mjs";
import { handshake, send, poll, collect } from "./lib/eio.mjs";
import { withTimeout, collectEvents, sleep } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

const skip = IS_REFERENCE && !process.env.SG_REFERENCE_MULTIPROCESS ? "siogate only (two fcgi processes)" : false;
const CLIENTS = 5;
const EVENTS = 20;
let stack;
before(async () => {
  if (!skip) stack = await startStack({ fcgi: 2 });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

test(`${CLIENTS} clients x ${EVENTS} events and ${EVENTS} acks over 2 fcgi processes, in order`, { skip, ...T }, async () => {
  const conns = await withTimeout(
    Promise.all(Array.from({ length: CLIENTS }, (_, c) => connectClient(stack, "/", { auth: { c } }))),
    15000,
    "connections",
  );
  const sockets = conns.map((x) => x.socket);
  const reasons = [];
  sockets.forEach((s, c) => s.on("disconnect", (r) => reasons.push([c, r])));
  try {
    assert.deepEqual(await Promise.all(conns.map((x) => x.auth)), Array.from({ length: CLIENTS }, (_, c) => ({ c })));
    await withTimeout(
      Promise.all(
        sockets.map(async (s, c) => {
          // events, pipelined: the client batches them into few POSTs
          const backs = collectEvents(s, "message-back", EVENTS, 20000, `client ${c}`);
          for (let i = 0; i < EVENTS; i++) s.emit("message", c, i);
          const got = await backs;
          assert.deepEqual(
            got,
            Array.from({ length: EVENTS }, (_, i) => [c, i]),
            `client ${c}: message-back out of order or wrong`,
          );
          // acks, one after the other: each a POST and a GET of its own, so
          // they alternate between the processes
          for (let i = 0; i < EVENTS; i++) {
            assert.deepEqual(await emitAck(s, "message-with-ack", [c, i, `ack-${c}-${i}`], 5000), [c, i, `ack-${c}-${i}`]);
          }
          // acks pipelined: they resolve in the order they were sent
          const order = [];
          await Promise.all(
            Array.from({ length: EVENTS }, (_, i) =>
              emitAck(s, "message-with-ack", [i], 10000).then((r) => order.push(r[0])),
            ),
          );
          assert.deepEqual(order, Array.from({ length: EVENTS }, (_, i) => i), `client ${c}: ack order`);
        }),
      ),
      60000,
      "all exchanges",
    );
    assert.deepEqual(reasons, [], "no client was disconnected");
  } finally {
    sockets.forEach((s) => closeClient(s));
  }
});

test("a packet produced while the other process holds the GET arrives at once", { skip, ...T }, async (t) => {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  await collect(stack, sid, 2, 5000);
  let worst = 0;
  for (let i = 0; i < 10; i++) {
    const held = poll(stack, sid, { timeoutMs: 3000 });
    await sleep(100); // the GET is held by one process...
    const t0 = Date.now();
    const r = await send(stack, sid, `42["message",${i}]`); // ...the POST is likely served by the other
    assert.equal(r.status, 200);
    const res = await held;
    assert.equal(res.status, 200);
    assert.equal(res.body, `42["message-back",${i}]`);
    const ms = Date.now() - t0;
    assert.ok(ms < 2000, `held GET answered ${ms} ms after the POST`);
    worst = Math.max(worst, ms);
  }
  t.diagnostic(`slowest wake-up of a held GET: ${worst} ms`);
  await send(stack, sid, "1");
});
