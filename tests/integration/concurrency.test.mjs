// Many clients at once: each gets its own replies, nobody else's.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { connectClient, closeClient, closeAllClients, emitAck } from "./lib/client.mjs";
import { withTimeout, collectEvents } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

const N = 50;
let stack;
let clients = [];
before(async () => {
  stack = await startStack({ fcgi: 1 });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

test(`${N} clients connect concurrently, each with its own auth`, T, async () => {
  const conns = await withTimeout(
    Promise.all(Array.from({ length: N }, (_, i) => connectClient(stack, "/", { auth: { i } }, 20000))),
    30000,
    `${N} connections`,
  );
  clients = conns.map((c) => c.socket);
  const auths = await withTimeout(Promise.all(conns.map((c) => c.auth)), 30000, "auth events");
  assert.deepEqual(auths, Array.from({ length: N }, (_, i) => ({ i })));
  assert.equal(new Set(clients.map((s) => s.id)).size, N, "distinct socket ids");
  assert.equal(new Set(clients.map((s) => s.io.engine.id)).size, N, "distinct engine ids");
});

test(`${N} clients each emit and get their own message-back`, T, async () => {
  assert.equal(clients.length, N, "previous test connected the clients");
  const stray = [];
  const received = clients.map((s, i) => {
    const p = collectEvents(s, "message-back", 5, 30000, `client ${i}`);
    return p;
  });
  clients.forEach((s, i) => {
    for (let k = 0; k < 5; k++) s.emit("message", `client-${i}`, k);
  });
  const all = await withTimeout(Promise.all(received), 30000, "all message-back");
  all.forEach((events, i) => {
    assert.deepEqual(
      events,
      Array.from({ length: 5 }, (_, k) => [`client-${i}`, k]),
      `client ${i} got ${JSON.stringify(events)}`,
    );
  });
  // nothing extra arrives afterwards
  clients.forEach((s, i) => s.on("message-back", (...a) => stray.push([i, a])));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(stray, []);
});

test(`${N} clients each get their own acks`, T, async () => {
  const res = await withTimeout(
    Promise.all(clients.map((s, i) => emitAck(s, "message-with-ack", [i, Buffer.from([i])], 20000))),
    30000,
    "all acks",
  );
  res.forEach((args, i) => {
    assert.equal(args[0], i);
    assert.ok(Buffer.from(args[1]).equals(Buffer.from([i])), `binary ack of client ${i}`);
  });
});

test(`${N} clients disconnect`, T, async () => {
  const gone = clients.map((s) => new Promise((r) => s.once("disconnect", r)));
  clients.forEach((s) => closeClient(s));
  await withTimeout(Promise.all(gone), 5000, "disconnects");
});
