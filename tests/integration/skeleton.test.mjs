// The skeleton example plugin (plugins/skeleton.c), the one newcomers copy:
// it must keep doing what its comments say. "ping" with an ack gets
// {pong, time, count}, the count kept in socket data (so right whichever
// process handles the ping).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, pluginPath, IS_REFERENCE } from "./lib/stack.mjs";
import { makeClient, whenConnected, closeClient, closeAllClients, emitAck, nextOn } from "./lib/client.mjs";
import { shift } from "./lib/features.mjs";

const skip = IS_REFERENCE ? "siogate only (example plugin)" : false;
const T = { timeout: 60000, skip };

let stack;
before(async () => {
  if (!skip) stack = await startStack({ fcgi: 2, conf: { plugin: pluginPath("skeleton") } });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

async function connect() {
  const s = makeClient(stack, "/skeleton");
  const ready = nextOn(s, "ready", 10000);
  await whenConnected(s);
  assert.equal(typeof (await ready)[0].ping, "string", "the \"ready\" event says what to do");
  return s;
}

test("ping: pong with the server time and a count per socket, across processes", T, async () => {
  const a = await connect();
  const b = await connect();
  try {
    for (let i = 1; i <= 4; i++) {
      const t0 = Date.now();
      const [r] = await emitAck(a, "ping", []);
      assert.equal(r.pong, true);
      assert.equal(r.count, i);
      assert.ok(Math.abs(r.time - t0) < 60000, `time ${r.time}`);
      await shift(stack);
    }
    assert.equal((await emitAck(b, "ping", []))[0].count, 1, "another socket counts its own");
  } finally {
    closeClient(a);
    closeClient(b);
  }
});

test("ping without an ack is counted all the same", T, async () => {
  const s = await connect();
  try {
    s.emit("ping");
    assert.equal((await emitAck(s, "ping", []))[0].count, 2);
  } finally {
    closeClient(s);
  }
});

test("the namespace is /skeleton only", T, async () => {
  const s = makeClient(stack, "/");
  try {
    const err = await new Promise((resolve) => s.once("connect_error", resolve));
    assert.equal(err.message, "Invalid namespace");
  } finally {
    closeClient(s);
  }
});
