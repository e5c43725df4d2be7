// Heartbeat with short settings: the server pings every 300 ms and waits
// 200 ms for the pong. A real client stays connected; a silent raw client
// is dropped.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { connectClient, closeClient, closeAllClients, nextOn } from "./lib/client.mjs";
import { handshake, send, poll, collect, waitSessionGone } from "./lib/eio.mjs";
import { sleep } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
let stack;
before(async () => {
  stack = await startStack({ fcgi: 1, conf: { ping_interval: PING_INTERVAL, ping_timeout: PING_TIMEOUT } });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

test("a connected client stays connected over several ping intervals", T, async () => {
  const { socket } = await connectClient(stack, "/");
  try {
    const engine = socket.io.engine;
    let pings = 0;
    const reasons = [];
    engine.on("ping", () => pings++);
    socket.on("disconnect", (r) => reasons.push(r));
    await sleep(2000);
    assert.deepEqual(reasons, [], "no disconnect");
    assert.ok(socket.connected, "still connected");
    assert.ok(pings >= 3, `received ${pings} pings in 2 s with pingInterval ${PING_INTERVAL}`);
    // and it still works
    const back = nextOn(socket, "message-back");
    socket.emit("message", "after pings");
    assert.deepEqual(await back, ["after pings"]);
  } finally {
    closeClient(socket);
  }
});

test("a raw client that answers every ping with a pong stays alive", T, async () => {
  const { sid } = await handshake(stack);
  const end = Date.now() + 1500;
  let pings = 0;
  while (Date.now() < end) {
    const res = await poll(stack, sid, { timeoutMs: PING_INTERVAL + 2000 });
    assert.equal(res.status, 200, `GET: ${res.status} ${res.body}`);
    assert.equal(res.body, "2");
    pings++;
    assert.equal((await send(stack, sid, "3")).status, 200);
  }
  assert.ok(pings >= 3, `${pings} pings`);
  assert.equal((await send(stack, sid, "40")).status, 200);
  const { packets } = await collect(stack, sid, 1, 2000);
  assert.match(packets[0], /^40\{"sid":/);
  await send(stack, sid, "1");
});

test("a raw client that stops answering is dropped (ping timeout)", T, async () => {
  const { sid } = await handshake(stack);
  await sleep(PING_INTERVAL + PING_TIMEOUT + 300);
  // it must be gone by now: no GET of ours may bring it a ping to revive it
  await waitSessionGone(stack, sid, 1500);
});

test("a client connected over Socket.IO that stops answering is dropped", T, async () => {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  const { packets } = await collect(stack, sid, 2, 2000);
  assert.match(packets[0], /^40\{"sid":/);
  // then it goes silent: no GET, no pong
  await sleep(PING_INTERVAL + PING_TIMEOUT + 300);
  await waitSessionGone(stack, sid, 1500);
});
