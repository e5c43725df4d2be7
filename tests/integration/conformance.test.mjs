// Session lifecycle at the edges, with the timings of the Engine.IO
// protocol's own test suite (pingInterval 300 ms, pingTimeout 200 ms), as
// raw HTTP and raw WebSocket so that the exact status codes and bodies are
// asserted. Every case here was checked against the reference server
// (SG_TARGET=reference); what it does is written beside each test.
//
//   1. a polling session whose client stopped polling is gone after
//      pingInterval + pingTimeout: its next request gets 400 "Session ID
//      unknown" (a close packet goes only to a GET held at that moment);
//   2. once a session upgraded (or while it upgrades), another WebSocket
//      with its sid is closed at once (after the 101, no probe awaited);
//   3. a polling GET after "2probe" and "5" is refused with 400 "Bad
//      request" whichever process sees it first; a GET during the upgrade
//      is held and answered noop.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startStack, IS_REFERENCE } from "./lib/stack.mjs";
import { handshake, send, poll, collect, errorBody } from "./lib/eio.mjs";
import { startFeaturesStack, observer, SKIP_REFERENCE } from "./lib/features.mjs";
import { closeAllClients } from "./lib/client.mjs";
import { withTimeout, sleep } from "./lib/util.mjs";

const T = { timeout: 60000 };

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const CONF = { ping_interval: PING_INTERVAL, ping_timeout: PING_TIMEOUT };

let stack;
before(async () => {
  stack = await startStack({ fcgi: 1, conf: CONF });
});
after(async () => {
  closeAllClients();
  for (const ws of sockets) ws.terminate();
  if (stack) await stack.stop();
});

function assertError(res, status, code, message) {
  assert.equal(res.status, status, `status ${res.status} ${JSON.stringify(res.body)}`);
  assert.deepEqual(errorBody(res), { code, message });
}
const assertUnknownSid = (res) => assertError(res, 400, 1, "Session ID unknown");
const assertBadRequest = (res) => assertError(res, 400, 3, "Bad request");

// ---------------------------------------------------------------- raw WebSocket

const sockets = new Set();

/**
 * A raw Engine.IO WebSocket (the ws package) to the stack, for sid when
 * given. Text messages queue up for next(); once `pong` is set, pings ("2")
 * are answered "3" and not queued. closed: resolves with the close code.
 */
function rawWs(s, sid) {
  const q = new URLSearchParams({ EIO: "4", transport: "websocket" });
  if (sid) q.set("sid", sid);
  const ws = new WebSocket(`${s.url.replace(/^http/, "ws")}${s.path}?${q}`);
  sockets.add(ws);
  const r = { ws, pong: false, messages: [], waiter: null };
  ws.on("error", () => {}); // a refused upgrade shows as close
  ws.on("message", (data, binary) => {
    const m = binary ? data : data.toString();
    if (r.pong && m === "2") {
      ws.send("3");
      return;
    }
    r.messages.push(m);
    if (r.waiter) r.waiter();
  });
  r.opened = withTimeout(
    new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("unexpected-response", (req, res) => reject(new Error(`HTTP ${res.statusCode} instead of 101`)));
    }),
    5000,
    "the WebSocket's 101",
  );
  r.opened.catch(() => {});
  r.closed = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
  r.next = async (ms = 3000) => {
    const end = Date.now() + ms;
    while (!r.messages.length) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no WebSocket message within ${ms} ms`);
      await withTimeout(new Promise((w) => (r.waiter = w)), left, "a WebSocket message").catch(() => {});
    }
    return r.messages.shift();
  };
  r.send = (m) => ws.send(m);
  r.close = () => {
    ws.close();
    sockets.delete(ws);
  };
  return r;
}

/** Upgrades a polling session by hand; resolves with the WebSocket once the
 * "5" was certainly taken: a CONNECT sent after it is answered over it. */
async function upgraded(sid) {
  const w = rawWs(stack, sid);
  await w.opened;
  w.send("2probe");
  assert.equal(await w.next(), "3probe");
  w.send("5");
  w.pong = true;
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":"[A-Za-z0-9_-]+"\}$/);
  assert.equal(await w.next(), '42["auth",{}]');
  return w;
}

/** The WebSocket carries the session: an event gets its echo over it. */
async function echoesOver(w, text) {
  w.send(`42["message","${text}"]`);
  assert.equal(await w.next(), `42["message-back","${text}"]`);
}

// ---------------------------------------------------------------- 1. expiry

// Reference: the ping timer fires pingInterval after the open packet, the
// pingTimeout timer after that closes the socket ("ping timeout") and
// forgets the sid; with no GET held, nothing is written anywhere.
test("1. a polling session left alone past pingInterval + pingTimeout: the next GET gets 400 Session ID unknown", T, async () => {
  const { sid } = await handshake(stack);
  await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
  assertUnknownSid(await poll(stack, sid));
  assertUnknownSid(await poll(stack, sid));
});

test("1. ...and so does a POST (the pong came too late)", T, async () => {
  const { sid } = await handshake(stack);
  await sleep(PING_INTERVAL + PING_TIMEOUT + 100);
  assertUnknownSid(await send(stack, sid, "3"));
  assertUnknownSid(await poll(stack, sid));
});

test("1. a session with a Socket.IO connection, left alone after its ping: 400 too", T, async () => {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  const { packets } = await collect(stack, sid, 2, 2000);
  assert.match(packets[0], /^40\{"sid":/);
  // the GET that carries the ping, never answered
  const ping = await poll(stack, sid, { timeoutMs: 2000 });
  assert.equal(ping.body, "2");
  await sleep(PING_TIMEOUT + 150);
  assertUnknownSid(await poll(stack, sid));
});

// Reference: a GET held when the pingTimeout timer fires is the transport
// writable at the close: it is answered with the close packet; the sid is
// unknown from then on.
test("1. a GET held when the pong is overdue gets the close packet, then the sid is unknown", T, async () => {
  const { sid } = await handshake(stack);
  const ping = await poll(stack, sid, { timeoutMs: 2000 });
  assert.equal(ping.status, 200);
  assert.equal(ping.body, "2");
  const t0 = Date.now();
  const held = await poll(stack, sid, { timeoutMs: 3000 }); // no pong: held until the timeout
  assert.equal(held.status, 200);
  assert.equal(held.body, "1");
  assert.ok(Date.now() - t0 < PING_TIMEOUT + 1000, `answered after ${Date.now() - t0} ms`);
  assertUnknownSid(await poll(stack, sid));
});

// Reference: a client that closes the transport itself ("1"), pings the
// server ("2", the wrong direction) or sends a payload that is not
// Engine.IO is forgotten at once (socket.onClose, not close()): the POST
// that carried it gets "ok", the next request 400, with no close packet in
// between (nobody polls to take one). A GET held meanwhile gets its answer
// instead (the tests above and "held" below).
for (const [what, body] of [
  ["a close packet from the client", "1"],
  ["a ping from the client", "2"],
  ["a connect, then a close packet", "40\x1e1"],
  ["an unknown Engine.IO packet type", "9"],
  ["a payload that is not Engine.IO", "x"],
  ["a good packet, then garbage", "40\x1eZZ"],
]) {
  test(`1. ${what} with no GET held: POST ok, then 400 Session ID unknown`, T, async () => {
    const { sid } = await handshake(stack);
    const res = await send(stack, sid, body);
    assert.equal(res.status, 200);
    assert.equal(res.body, "ok");
    assertUnknownSid(await poll(stack, sid));
  });
}

test("1. a payload that is not Engine.IO while a GET is held: the held GET gets the close packet, then 400", T, async () => {
  const { sid } = await handshake(stack);
  const held = poll(stack, sid, { timeoutMs: 3000 });
  await sleep(50); // held by now (the ping is PING_INTERVAL away)
  assert.equal((await send(stack, sid, "x")).status, 200);
  const res = await held;
  assert.equal(res.status, 200);
  assert.equal(res.body, "1");
  assertUnknownSid(await poll(stack, sid));
});

// siogate: the plugin's disconnect handler runs once, with "ping timeout",
// whether the sweep or the next request found the session expired.
let fstack;
test("1. the disconnect handler sees \"ping timeout\", exactly once", { ...T, skip: SKIP_REFERENCE }, async () => {
  fstack = await startFeaturesStack({ conf: CONF });
  try {
    const obs = await observer(fstack);
    const reasons = new Map();
    obs.socket.on("gone", ({ id, reason }) => reasons.set(id, [...(reasons.get(id) || []), reason]));
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const { sid } = await handshake(fstack);
      assert.equal((await send(fstack, sid, "40/f,")).status, 200);
      const { packets } = await collect(fstack, sid, 1, 2000);
      const m = /^40\/f,\{"sid":"([^"]+)"\}$/.exec(packets[0]);
      assert.ok(m, packets[0]);
      ids.push({ sid, id: m[1] });
    }
    // the first is asked for right after its deadline (the next request may
    // find it expired before any sweep), the second is left to the sweep
    await sleep(PING_INTERVAL + PING_TIMEOUT + 20);
    assertUnknownSid(await poll(fstack, ids[0].sid));
    for (const { id } of ids) assert.equal(await obs.gone(id, 5000), "ping timeout");
    assertUnknownSid(await poll(fstack, ids[1].sid));
    await sleep(1500); // a second disconnect would have come by now
    for (const { id } of ids) assert.deepEqual(reasons.get(id), ["ping timeout"]);
  } finally {
    closeAllClients();
    await fstack.stop();
  }
});

// ---------------------------------------------------------------- 2. a second WebSocket

// Reference (engine.io's onWebSocket): the upgrade completes (101), then a
// client already upgraded, or upgrading, has the new WebSocket closed at
// once (ws's close() without a status code: 1005 at the client; siogate
// sends 1000, its code for a refused upgrade).
test("2. after the upgrade, a second WebSocket with the sid is closed at once", T, async () => {
  const { sid } = await handshake(stack);
  const w = await upgraded(sid);
  const t0 = Date.now();
  const w2 = rawWs(stack, sid);
  const code = await withTimeout(w2.closed, 1000, "the second WebSocket's close");
  assert.ok([1000, 1005].includes(code), `close code ${code}`);
  assert.deepEqual(w2.messages, []);
  assert.ok(Date.now() - t0 < 1000);
  // the first one still carries the session
  await echoesOver(w, "still here");
  w.close();
});

test("2. while a WebSocket upgrades (after 3probe), a second one with the sid is closed at once", T, async () => {
  const { sid } = await handshake(stack);
  const w = rawWs(stack, sid);
  await w.opened;
  w.send("2probe");
  assert.equal(await w.next(), "3probe");
  const w2 = rawWs(stack, sid);
  const code = await withTimeout(w2.closed, 1000, "the second WebSocket's close");
  assert.ok([1000, 1005].includes(code), `close code ${code}`);
  assert.deepEqual(w2.messages, []);
  // the first one completes its upgrade
  w.send("5");
  w.pong = true;
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":/);
  assert.equal(await w.next(), '42["auth",{}]');
  await echoesOver(w, "upgraded");
  w.close();
});

// The protocol test suite's own case: "2probe" and "5" sent without waiting,
// then the second WebSocket.
test("2. 2probe and 5 sent at once, then a second WebSocket: it is closed", T, async () => {
  const { sid } = await handshake(stack);
  const w = rawWs(stack, sid);
  await w.opened;
  w.send("2probe");
  w.send("5");
  w.pong = true;
  const w2 = rawWs(stack, sid);
  const code = await withTimeout(w2.closed, 2000, "the second WebSocket's close");
  assert.ok([1000, 1005].includes(code), `close code ${code}`);
  assert.equal(await w.next(), "3probe");
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":/);
  w.close();
});

// Two WebSockets for one polling session, the second before the first sent
// "2probe". Reference: the first is "upgrading" from its connection on, so
// the second is closed right after its 101. siogate marks the upgrade at
// "2probe": the second is closed once the first's probe is committed (a
// WebSocket that waits for its own probe re-checks the session).
test("2. a WebSocket opened before another one probed is closed once that one upgrades", T, async () => {
  const { sid } = await handshake(stack);
  const w = rawWs(stack, sid);
  await w.opened;
  const w2 = rawWs(stack, sid);
  await w2.opened;
  w.send("2probe");
  assert.equal(await w.next(), "3probe");
  w.send("5");
  w.pong = true;
  const code = await withTimeout(w2.closed, 1000, "the second WebSocket's close");
  assert.ok([1000, 1005].includes(code), `close code ${code}`);
  assert.deepEqual(w2.messages, []);
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":/);
  assert.equal(await w.next(), '42["auth",{}]');
  await echoesOver(w, "the first one");
  w.close();
});

// ---------------------------------------------------------------- 3. polling after the upgrade

// The protocol test suite's case: "2probe" and "5" without waiting for
// "3probe", then a GET. Reference: the GET is checked against the socket's
// transport, websocket by then: 400 {"code":3,"message":"Bad request"}
// (TRANSPORT_MISMATCH). siogate: whichever of siogate-fcgi and siogate-wsd
// gets there first, the GET is refused.
test("3. 2probe and 5 over the WebSocket, then a polling GET: 400 Bad request", T, async () => {
  for (let i = 0; i < 5; i++) {
    const { sid } = await handshake(stack);
    const w = rawWs(stack, sid);
    await w.opened;
    w.send("2probe");
    w.send("5");
    w.pong = true;
    assertBadRequest(await poll(stack, sid, { timeoutMs: 3000 }));
    assert.equal(await w.next(), "3probe");
    w.send("40");
    assert.match(await w.next(), /^40\{"sid":/);
    assertBadRequest(await send(stack, sid, "40/custom,"));
    w.close();
  }
});

test("3. after 3probe, 5 and a GET at once: 400 Bad request", T, async () => {
  for (let i = 0; i < 5; i++) {
    const { sid } = await handshake(stack);
    const w = rawWs(stack, sid);
    await w.opened;
    w.send("2probe");
    assert.equal(await w.next(), "3probe");
    w.send("5");
    w.pong = true;
    assertBadRequest(await poll(stack, sid, { timeoutMs: 3000 }));
    w.close();
  }
});

// Reference: while the WebSocket upgrades, a GET is the transport writable:
// a timer started at "2probe" writes a noop into it every 100 ms, so that
// the client can pause polling and send "5".
test("3. a GET during the upgrade is held, then answered noop; after 5 GETs get 400", T, async () => {
  const { sid } = await handshake(stack);
  const w = rawWs(stack, sid);
  await w.opened;
  w.send("2probe");
  assert.equal(await w.next(), "3probe");
  const t0 = Date.now();
  const res = await poll(stack, sid, { timeoutMs: 3000 });
  assert.equal(res.status, 200);
  assert.equal(res.body, "6");
  assert.ok(Date.now() - t0 < PING_INTERVAL, `noop after ${Date.now() - t0} ms`);
  w.send("5");
  w.pong = true;
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":/);
  assertBadRequest(await poll(stack, sid));
  w.close();
});

// A GET held during the upgrade when the "5" comes. Reference: the polling
// transport is closed while writable, so the held GET gets the close
// packet "1" (and a GET that comes after the "5" gets 400). siogate cannot
// tell a GET held before the "5" from one sent after it that reached
// siogate-fcgi before siogate-wsd committed the "5": it answers both 400.
// Either way polling ends there and the session goes on over the WebSocket.
test("3. a GET held during the upgrade when 5 comes: polling ends there; the next GET gets 400", T, async () => {
  const { sid } = await handshake(stack);
  const w = rawWs(stack, sid);
  await w.opened;
  w.send("2probe");
  assert.equal(await w.next(), "3probe");
  const held = poll(stack, sid, { timeoutMs: 3000 });
  await sleep(30); // the GET is held by now (the noop would come 100 ms after the probe)
  w.send("5");
  w.pong = true;
  const res = await held;
  if (IS_REFERENCE && res.status === 200) assert.equal(res.body, "1");
  else assertBadRequest(res);
  assertBadRequest(await poll(stack, sid));
  w.send("40");
  assert.match(await w.next(), /^40\{"sid":/);
  assert.equal(await w.next(), '42["auth",{}]');
  await echoesOver(w, "after the upgrade");
  w.close();
});
