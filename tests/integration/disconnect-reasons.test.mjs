// A plugin's disconnect handler is told why, exactly once, with the
// reference server's reason (socket.io's "disconnect" reasons), however the
// connection ended: the client broke the protocol, closed, vanished or
// stopped answering pings; the server closed the connection or shut down.
// tests/plugins/features.c reports each socket that leaves "/f" to the
// room "observers" ("gone" {id, reason}); a raw Engine.IO client (HTTP or
// the ws package) does what a real client would not. The reasons the
// plugin API's own calls give (client/server namespace disconnect, ping
// timeout over polling, transport close of a socket.io-client) are in
// plugin-api.test.mjs and conformance.test.mjs.
//
// siogate only (it tests the plugin API).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startStack, pluginPath, testPluginPath } from "./lib/stack.mjs";
import { closeAllClients } from "./lib/client.mjs";
import { observer, SKIP_REFERENCE as skip } from "./lib/features.mjs";
import { handshake, send, poll, collect } from "./lib/eio.mjs";
import { sleep, withTimeout } from "./lib/util.mjs";

const T = { timeout: 60000, skip };
const PING_INTERVAL = 1000;
const PING_TIMEOUT = 1000;

let stack, obs;
const reasons = new Map(); // socket id -> every reason reported for it
before(async () => {
  if (skip) return;
  stack = await startStack({
    restart: true, // siogate-wsd is stopped by one test and started again
    conf: {
      plugin: [pluginPath("echo"), testPluginPath("features")],
      ping_interval: PING_INTERVAL,
      ping_timeout: PING_TIMEOUT,
    },
  });
  obs = await observer(stack);
  obs.socket.on("gone", ({ id, reason }) => reasons.set(id, [...(reasons.get(id) || []), reason]));
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

/** Waits for the reason of id, then a while more: it must have come once. */
async function reportedOnce(id, want) {
  assert.equal(await obs.gone(id, 10000), want);
  await sleep(PING_INTERVAL + PING_TIMEOUT); // a sweep would have found it again by now
  assert.deepEqual(reasons.get(id), [want], `reasons reported for ${id}`);
}

/** A raw polling session with a socket on "/f": {sid, id}. */
async function pollingF() {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40/f,")).status, 200);
  const { packets } = await collect(stack, sid, 1, 5000);
  const m = /^40\/f,\{"sid":"([^"]+)"\}$/.exec(packets[0]);
  assert.ok(m, packets[0]);
  return { sid, id: m[1] };
}

/** A raw WebSocket session with a socket on "/f", answering pings unless
 * told not to: {ws, id}. */
async function websocketF({ pong = true } = {}) {
  const ws = new WebSocket(`${stack.url.replace(/^http/, "ws")}${stack.path}?EIO=4&transport=websocket`);
  ws.on("error", () => {});
  const texts = [];
  ws.on("message", (d, binary) => {
    const m = binary ? d : d.toString();
    if (m === "2") {
      if (pong) ws.send("3");
    } else texts.push(m);
  });
  await withTimeout(new Promise((r, j) => (ws.once("open", r), ws.once("unexpected-response", () => j(new Error("no 101"))))), 5000, "101");
  const next = async () => {
    const end = Date.now() + 5000;
    while (!texts.length) {
      if (Date.now() > end) throw new Error("no WebSocket message within 5 s");
      await sleep(10);
    }
    return texts.shift();
  };
  assert.match(await next(), /^0\{"sid":/);
  ws.send("40/f,");
  const m = /^40\/f,\{"sid":"([^"]+)"\}$/.exec(await next());
  assert.ok(m);
  return { ws, id: m[1] };
}

for (const [what, body, reason] of [
  ["a ping from the client (the wrong direction)", "2", "transport error"],
  ["a payload that is not Engine.IO", "x", "parse error"],
  ["a Socket.IO packet that does not parse", '42/f,["unterminated"', "parse error"],
  ["a second CONNECT for a namespace already joined", "40/f,", "forced close"],
  ["the client's close packet", "1", "transport close"],
]) {
  test(`polling, ${what}: "${reason}"`, T, async () => {
    const { sid, id } = await pollingF();
    assert.equal((await send(stack, sid, body)).status, 200);
    await reportedOnce(id, reason);
  });
}

test('polling, two GETs at once: "transport error"', T, async () => {
  const { sid, id } = await pollingF();
  const first = poll(stack, sid, { timeoutMs: 5000 });
  await sleep(50);
  const second = await poll(stack, sid, { timeoutMs: 5000 });
  assert.equal(second.status, 400);
  assert.equal((await first).body, "1");
  await reportedOnce(id, "transport error");
});

test('WebSocket dropped without a close frame: "transport close"', T, async () => {
  const { ws, id } = await websocketF();
  ws.terminate();
  await reportedOnce(id, "transport close");
});

test('WebSocket whose client stopped answering pings: "ping timeout"', T, async () => {
  const { ws, id } = await websocketF({ pong: false });
  try {
    await reportedOnce(id, "ping timeout");
  } finally {
    ws.terminate();
  }
});

test('siogate-wsd stopped (SIGTERM) with a WebSocket open: "server shutting down"', T, async () => {
  const { ws, id } = await websocketF();
  const closed = new Promise((r) => ws.once("close", (code) => r(code)));
  const wsd = pidsOf("siogate-wsd");
  assert.equal(wsd.length, 1);
  process.kill(wsd[0], "SIGTERM");
  assert.equal(await withTimeout(closed, 10000, "the WebSocket's close"), 1001);
  await reportedOnce(id, "server shutting down");
  // the stack started it again (--restart): WebSockets are served again
  const again = await websocketF();
  again.ws.close();
  await reportedOnce(again.id, "transport close");
});

/** pids of the stack's processes named name (its process group). */
function pidsOf(name) {
  return stack.daemons().filter((d) => d.name === name).map((d) => d.pid);
}
