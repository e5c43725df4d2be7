// The limits (README, "Limits"): max_sessions, max_sockets_per_session,
// handshakes_per_second, max_attachments, max_json_depth and
// max_queued_packets, each with real clients through the web server: the
// documented answer for the one over the limit, and everybody else still
// served.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { IS_REFERENCE, stacksForFile } from "./lib/stack.mjs";
import { eioUrl, errorBody, handshake, rawGet, request, send, collect } from "./lib/eio.mjs";
import {
  assertServesFreshClient,
  closeAllClients,
  closeClient,
  connectClient,
  emitAck,
  makeClient,
  makeManager,
  whenConnected,
} from "./lib/client.mjs";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { BUILDDIR } from "./lib/stack.mjs";
import { rawWsSession, wsdSocket } from "./lib/rawws.mjs";
import { storeQuery } from "./lib/store.mjs";
import { sleep, waitUntil, withTimeout } from "./lib/util.mjs";

const execFileP = promisify(execFile);

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

/** One row of SQL's answer from the stack's store (sqlite3 or psql, async). */
function sql(s, query) {
  return storeQuery(s.db, query, { timeout: 10000 });
}
const queued = async (s, sid) => Number(await sql(s, `SELECT count(*) FROM queue WHERE sid = '${sid}';`));
const sessionState = (s, sid) => sql(s, `SELECT state || '|' || coalesce(close_reason, '') FROM sessions WHERE sid = '${sid}';`);

/** `siogate emit` to one socket (args: JSON texts), as a shell script would. */
function emitTo(s, socketId, flags, event, ...args) {
  return execFileP(join(BUILDDIR, "gateway", "siogate"),
    ["--conf", join(s.dir, "siogate.conf"), "emit", ...flags, "--socket", socketId, event, ...args],
    { timeout: 10000 });
}

/**
 * ws (rawWsSession) stops reading, then sends acked events of 200 KB until
 * the answers stop fitting in siogate-wsd's output buffer (and the
 * kernel's): the first ones then wait in the store. Resolves with the
 * number of events sent (at most 60: 12 MB).
 */
async function stopReadingUntilQueued(s, ws) {
  ws.c.pause();
  const big = JSON.stringify("q".repeat(200000));
  let sent = 0;
  await waitUntil(async () => {
    if (await queued(s, ws.sid) > 0) return true;
    if (sent >= 60) throw new Error(`${sent} answers of 200 KB unread, none waits in the store`);
    ws.send(`42${sent}["message-with-ack",${big}]`);
    sent++;
    await sleep(100);
    return false;
  }, 30000, "answers waiting in the store");
  // the last events sent may still be on their way: until it settles
  let last = -1;
  await waitUntil(async () => {
    const n = await queued(s, ws.sid);
    const same = n === last;
    last = n;
    if (!same) await sleep(200);
    return same;
  }, 10000, "the queue to settle");
  return sent;
}

// The session's own queue rows are what max_queued_packets counts; the
// broadcast log's shared rows are not (README, Limits). These tests count
// rows of emits to one socket, so they keep those out of the log whatever
// SG_BROADCAST_LOG_MIN says (tests/run's second pass sets it to 0).
const OWN_ROWS = { broadcast_log_min: 1000000 };

test("max_queued_packets: a WebSocket client that stops reading loses its volatile packets first; all the others arrive", T, async () => {
  const s = await stackWith({ max_queued_packets: 20, ...OWN_ROWS });
  const { socket: bystander } = await connectClient(s, "/");
  // straight to siogate-wsd: through the web server, what it does not
  // read is buffered by the web server first (lighttpd: all of it)
  const ws = await rawWsSession(s, { unix: wsdSocket(s) });
  const acked = await stopReadingUntilQueued(s, ws);
  const k = await queued(s, ws.sid);
  assert.ok(k <= 5, `${k} answers waiting already (a limit of 20 leaves room for the test's 5 + 1)`);
  // 30 volatile packets and 5 others from elsewhere: the emits do not check
  // the limit (the session's own requests do), so 35 + k wait
  for (let i = 0; i < 30; i++) await emitTo(s, ws.socketId, ["--volatile"], "v", String(i));
  for (let i = 0; i < 5; i++) await emitTo(s, ws.socketId, [], "n", String(i));
  assert.equal(await queued(s, ws.sid), k + 35);
  // its next frame: 36 + k > 20; the 30 volatile ones go, 6 + k stay
  ws.send('42["message","poke"]');
  await waitUntil(async () => (await queued(s, ws.sid)) === k + 6, 10000,
    async () => `${await queued(s, ws.sid)} waiting, expected ${k + 6}`);
  assert.equal(await sessionState(s, ws.sid), "0|", "still open");
  // it reads again: every answer, the 5 others and the echo, no volatile one
  ws.c.resume();
  await waitUntil(() => ws.texts().includes('42["message-back","poke"]'), 20000,
    () => `the echo of "poke" (${ws.texts().length} frames read)`);
  const texts = ws.texts();
  const acks = texts.filter((t) => /^43\d+\[/.test(t));
  assert.equal(acks.length, acked, "every ack, those that waited in the store too");
  assert.deepEqual(acks.map((t) => Number(/^43(\d+)/.exec(t)[1])), [...Array(acked).keys()], "in order");
  assert.deepEqual(texts.filter((t) => t.startsWith('42["n"')), [0, 1, 2, 3, 4].map((i) => `42["n",${i}]`));
  assert.deepEqual(texts.filter((t) => t.startsWith('42["v"')), [], "no volatile packet");
  assert.ok(texts.indexOf('42["n",4]') < texts.indexOf('42["message-back","poke"]'), "in order");
  assert.equal(ws.closed(), null);
  ws.c.destroy();
  assert.deepEqual(await emitAck(bystander, "message-with-ack", ["here"]), ["here"]);
});

test("max_queued_packets: over it with nothing volatile, the session is closed (transport error) and its queue deleted", T, async () => {
  const s = await stackWith({ max_queued_packets: 20, ...OWN_ROWS });
  const { socket: bystander } = await connectClient(s, "/");
  // straight to siogate-wsd: through the web server, what it does not
  // read is buffered by the web server first (lighttpd: all of it)
  const ws = await rawWsSession(s, { unix: wsdSocket(s) });
  await stopReadingUntilQueued(s, ws);
  for (let i = 0; i < 25; i++) await emitTo(s, ws.socketId, [], "n", String(i));
  assert.ok(await queued(s, ws.sid) > 20, "over it: the emits do not check");
  assert.equal(await sessionState(s, ws.sid), "0|");
  ws.send('42["message","poke"]');
  await waitUntil(async () => (await sessionState(s, ws.sid)) !== "0|", 10000, "its close");
  assert.equal(await sessionState(s, ws.sid), "1|transport error");
  assert.equal(await queued(s, ws.sid), 0, "its queue went with it");
  // it reads again: what was buffered before, then the close frame (1000);
  // nothing that waited in the store
  ws.c.resume();
  // (the close frame, unless siogate-wsd's 2 s linger after it ran out
  // before this client drained what came first: then the connection ends)
  await waitUntil(() => ws.closed() !== null || ws.ended(), 20000,
    () => `a close frame (${ws.texts().length} frames read)`);
  if (ws.closed() !== null) assert.equal(ws.closed(), 1000);
  assert.deepEqual(ws.texts().filter((t) => t.startsWith('42["n"') || t.includes("poke")), []);
  ws.c.destroy();
  assert.deepEqual(await emitAck(bystander, "message-with-ack", ["here"]), ["here"]);
  await assertServesFreshClient(s, assert);
});

test("max_queued_packets: a polling client whose echoes pile up is closed at the POST over it; its next request gets 400", T, async () => {
  const s = await stackWith({ max_queued_packets: 20 });
  const { socket: bystander } = await connectClient(s, "/");
  const { sid } = await handshake(s);
  assert.equal((await send(s, sid, "40")).status, 200);
  const ten = Array.from({ length: 10 }, (_, i) => `42["message",${i}]`).join("\x1e");
  // the CONNECT reply, "auth" and 10 echoes: 12; then 22 > 20
  assert.equal((await send(s, sid, ten)).status, 200);
  assert.equal(await sessionState(s, sid), "0|");
  assert.equal(await queued(s, sid), 12);
  assert.equal((await send(s, sid, ten)).status, 200, "the POST was received");
  assert.equal(await sessionState(s, sid), "1|transport error");
  assert.equal(await queued(s, sid), 0);
  const r = await request(eioUrl(s, { sid }));
  assert.equal(r.status, 400);
  assert.deepEqual(errorBody(r), { code: 1, message: "Session ID unknown" });
  assert.deepEqual(await emitAck(bystander, "message-with-ack", ["here"]), ["here"]);
});
