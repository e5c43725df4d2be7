// The limits (README, "Limits"): max_sessions, max_sockets_per_session,
// handshakes_per_second, max_attachments and max_json_depth, each with
// real clients through the web server: the documented answer for the one
// over the limit, and everybody else still served.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { IS_REFERENCE, stacksForFile } from "./lib/stack.mjs";
import { eioUrl, errorBody, handshake, rawGet, request, send, collect } from "./lib/eio.mjs";
import {
  assertServesFreshClient,
  closeAllClients,
  closeClient,
  connectClient,
  makeClient,
  makeManager,
  whenConnected,
} from "./lib/client.mjs";
import { withTimeout } from "./lib/util.mjs";

const skip = IS_REFERENCE ? "siogate only (siogate's configuration keys)" : false;
const T = { timeout: 90000, skip };

after(closeAllClients);
const stackWith = stacksForFile(after);

/** Resolves with the error of the next connect_error on socket. */
function connectError(socket, ms = 10000) {
  return withTimeout(new Promise((r) => socket.once("connect_error", r)), ms, "connect_error");
}

/** Resolves with the reason of the next disconnect of socket. */
function disconnected(socket, ms = 10000) {
  return withTimeout(new Promise((r) => socket.once("disconnect", r)), ms, "disconnect");
}

test("max_sessions: the handshake beyond it gets 503 {code:4}, polling and WebSocket; a closed session frees a place", T, async () => {
  const s = await stackWith({ max_sessions: 3 });
  const open = [];
  for (let i = 0; i < 3; i++) open.push((await handshake(s)).sid);

  const r = await request(eioUrl(s));
  assert.equal(r.status, 503);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.deepEqual(errorBody(r), { code: 4, message: "Too many sessions" });
  const ws = await rawGet(eioUrl(s, { transport: "websocket" }), { upgrade: true });
  assert.equal(ws.status, 503);
  assert.deepEqual(JSON.parse(ws.body), { code: 4, message: "Too many sessions" });
  // socket.io-client sees it as a failed connection
  const refused = makeClient(s, "/");
  const err = await connectError(refused);
  assert.match(String(err && err.message), /poll|xhr|error/i);
  closeClient(refused);

  // the sessions already open are still served
  assert.equal((await send(s, open[0], "40")).status, 200);
  const { packets } = await collect(s, open[0], 2, 5000);
  assert.match(packets[0], /^40\{"sid":/);

  // one closes: a new client gets its place, and works
  assert.equal((await send(s, open[1], "1")).status, 200);
  await assertServesFreshClient(s, assert);
});

test("max_sockets_per_session: a CONNECT beyond it gets connect_error 'Too many sockets'; the others stay", T, async () => {
  const s = await stackWith({ max_sockets_per_session: 1 });
  const m = makeManager(s);
  const root = m.socket("/");
  await whenConnected(root);
  const custom = m.socket("/custom");
  const err = await connectError(custom);
  assert.equal(err.message, "Too many sockets");
  // the first socket of that session still works
  const back = new Promise((r) => root.once("message-back", (...a) => r(a)));
  root.emit("message", "still here");
  assert.deepEqual(await withTimeout(back, 5000, "message-back"), ["still here"]);
  // leaving "/" makes room for "/custom" on the same session
  root.disconnect();
  custom.connect();
  await whenConnected(custom);
  closeClient(custom);
  await assertServesFreshClient(s, assert);
});

test("handshakes_per_second: one address over the rate gets 429 {code:4}; another address is served", T, async () => {
  const s = await stackWith({ handshakes_per_second: 2 });
  // sequential handshakes from 127.0.0.1: the bucket holds 2 and refills at
  // 2/s, so a refusal comes within a few (bounded at 200)
  let refused = null;
  let accepted = 0;
  for (let i = 0; i < 200 && !refused; i++) {
    const r = await request(eioUrl(s));
    if (r.status === 200) accepted++;
    else refused = r;
  }
  assert.ok(refused, "no handshake refused in 200");
  assert.ok(accepted >= 2, `only ${accepted} accepted before the refusal`);
  assert.equal(refused.status, 429);
  assert.deepEqual(errorBody(refused), { code: 4, message: "Too many handshakes" });
  // the WebSocket handshake is counted for the same address
  let wsRefused = null;
  for (let i = 0; i < 200 && !wsRefused; i++) {
    const r = await rawGet(eioUrl(s, { transport: "websocket" }), { upgrade: true });
    if (r.status !== 101) wsRefused = r;
  }
  assert.ok(wsRefused, "no WebSocket handshake refused in 200");
  assert.equal(wsRefused.status, 429);
  assert.deepEqual(JSON.parse(wsRefused.body), { code: 4, message: "Too many handshakes" });
  // another client address is not limited by that one's bucket
  const other = await rawGet(eioUrl(s), { localAddress: "127.0.0.2" });
  assert.equal(other.status, 200, other.body);
  assert.match(other.body, /^0\{"sid":/);
});

test("max_attachments: a packet with more binary attachments closes its session (parse error); fewer pass", T, async () => {
  const s = await stackWith({ max_attachments: 2 });
  const { socket } = await connectClient(s, "/");
  const back = new Promise((r) => socket.once("message-back", (...a) => r(a)));
  socket.emit("message", Buffer.from([1]), Buffer.from([2]));
  const got = await withTimeout(back, 5000, "message-back");
  assert.deepEqual(got.map((b) => [...b]), [[1], [2]]);
  const gone = disconnected(socket);
  socket.emit("message", Buffer.from([1]), Buffer.from([2]), Buffer.from([3]));
  assert.equal(await gone, "transport close"); // the server closed the connection
  closeClient(socket);
  await assertServesFreshClient(s, assert);
});

test("max_json_depth: a packet nested deeper closes its session (parse error); shallower passes", T, async () => {
  const s = await stackWith({ max_json_depth: 8 });
  const nest = (n) => (n === 0 ? 0 : [nest(n - 1)]);
  const { socket } = await connectClient(s, "/");
  // ["message", [[...[0]...]]]: the packet's array is one level more
  const back = new Promise((r) => socket.once("message-back", (...a) => r(a)));
  socket.emit("message", nest(7));
  assert.deepEqual(await withTimeout(back, 5000, "message-back"), [nest(7)]);
  const gone = disconnected(socket);
  socket.emit("message", nest(8));
  assert.equal(await gone, "transport close");
  closeClient(socket);
  await assertServesFreshClient(s, assert);
});
