// Bad input, sent with plain fetch: every bad request gets the protocol's
// answer, and the server goes on serving fresh clients (no crash, no
// wedged store).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { assertServesFreshClient, closeAllClients } from "./lib/client.mjs";
import { request, eioUrl, errorBody, handshake, send, poll, collect, packets, waitSessionGone, connectedSession } from "./lib/eio.mjs";
import { sleep } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

const MAX_PAYLOAD = 1000;
let stack;
before(async () => {
  stack = await startStack({
    fcgi: 1,
    conf: { ping_interval: 3000, ping_timeout: 2000, max_payload: MAX_PAYLOAD },
  });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

function assertEioError(res, code, message) {
  assert.equal(res.status, code === 4 ? 403 : 400, `status for ${JSON.stringify(res.body)}`);
  assert.deepEqual(errorBody(res), { code, message });
  assert.match(res.headers.get("content-type") || "", /^application\/json/);
}

// Hand a session a packet it must reject; the POST itself may be answered
// 200 ("ok": the reference server parses after answering) or 400, but the
// session must end.
async function assertPostEndsSession(body) {
  const { sid } = await handshake(stack);
  const r = await send(stack, sid, body);
  assert.ok(r.status === 200 || r.status === 400, `POST ${JSON.stringify(body)}: status ${r.status} ${r.body}`);
  await waitSessionGone(stack, sid, 2000);
}

test("EIO=3 (and no EIO at all): 400 code 5 Unsupported protocol version", T, async () => {
  assertEioError(await request(eioUrl(stack, { EIO: "3" })), 5, "Unsupported protocol version");
  assertEioError(await request(eioUrl(stack, { EIO: undefined })), 5, "Unsupported protocol version");
  await assertServesFreshClient(stack, assert);
});

test("unknown transport: 400 code 0 Transport unknown", T, async () => {
  assertEioError(await request(eioUrl(stack, { transport: "foo" })), 0, "Transport unknown");
  assertEioError(await request(eioUrl(stack, { transport: undefined })), 0, "Transport unknown");
  await assertServesFreshClient(stack, assert);
});

test("transport=websocket without an upgrade: 400 code 3 Bad request", T, async () => {
  assertEioError(await request(eioUrl(stack, { transport: "websocket" })), 3, "Bad request");
  await assertServesFreshClient(stack, assert);
});

test("unknown sid: 400 code 1 Session ID unknown (GET and POST)", T, async () => {
  const sid = "AAAAAAAAAAAAAAAAAAAA";
  assertEioError(await poll(stack, sid), 1, "Session ID unknown");
  assertEioError(await send(stack, sid, "40"), 1, "Session ID unknown");
  await assertServesFreshClient(stack, assert);
});

test("POST without sid: 400 code 2 Bad handshake method", T, async () => {
  const res = await request(eioUrl(stack), { method: "POST", body: "40" });
  assertEioError(res, 2, "Bad handshake method");
  await assertServesFreshClient(stack, assert);
});

test('garbage Engine.IO payload ("zzz"): the session ends', T, async () => {
  await assertPostEndsSession("zzz");
  await assertServesFreshClient(stack, assert);
});

test("empty POST body: the session ends", T, async () => {
  await assertPostEndsSession("");
  await assertServesFreshClient(stack, assert);
});

test('client ping "2" (wrong heartbeat direction in EIO 4): the session ends', T, async () => {
  await assertPostEndsSession("2");
  await assertServesFreshClient(stack, assert);
});

test('invalid Socket.IO packet ("4{garbage"): the session ends', T, async () => {
  await assertPostEndsSession("4{garbage");
  await assertServesFreshClient(stack, assert);
});

test('invalid JSON in an event ("42[garbage") on a connected socket: the session ends', T, async () => {
  const sid = await connectedSession(stack);
  const r = await send(stack, sid, "42[garbage");
  assert.ok(r.status === 200 || r.status === 400, `status ${r.status}`);
  await waitSessionGone(stack, sid, 2000);
  await assertServesFreshClient(stack, assert);
});

test("invalid Socket.IO packet while a GET is held: the held GET closes", T, async () => {
  const sid = await connectedSession(stack);
  const held = poll(stack, sid, { timeoutMs: 2500 });
  await sleep(300); // let the GET arrive and be held
  const r = await send(stack, sid, "4{garbage");
  assert.ok(r.status === 200 || r.status === 400, `status ${r.status}`);
  const res = await held;
  assert.equal(res.status, 200);
  assert.ok(packets(res.body).includes("1"), `held GET returned ${JSON.stringify(res.body)}, want a close packet`);
  await waitSessionGone(stack, sid, 2000);
  await assertServesFreshClient(stack, assert);
});

test(`POST body of exactly max_payload (${MAX_PAYLOAD} bytes) is accepted`, T, async () => {
  const sid = await connectedSession(stack);
  const head = '42["message","';
  const tail = '"]';
  const body = head + "x".repeat(MAX_PAYLOAD - head.length - tail.length) + tail;
  assert.equal(Buffer.byteLength(body), MAX_PAYLOAD);
  const r = await send(stack, sid, body);
  assert.equal(r.status, 200);
  assert.equal(r.body, "ok");
  const { packets: p } = await collect(stack, sid, 1, 3000);
  assert.equal(p[0], '42["message-back","' + "x".repeat(MAX_PAYLOAD - head.length - tail.length) + '"]');
  await send(stack, sid, "1");
});

test(`POST body beyond max_payload (2000 > ${MAX_PAYLOAD} bytes): HTTP 413`, T, async () => {
  const sid = await connectedSession(stack);
  const body = '42["message","' + "x".repeat(2000 - 16) + '"]';
  assert.equal(Buffer.byteLength(body), 2000);
  const r = await send(stack, sid, body);
  assert.equal(r.status, 413);
  await assertServesFreshClient(stack, assert);
});

test("two concurrent GETs for one session: the second gets 400 and the session ends", T, async () => {
  const sid = await connectedSession(stack);
  const first = poll(stack, sid, { timeoutMs: 2500 });
  await sleep(300); // the first GET is now held
  const second = await poll(stack, sid, { timeoutMs: 2500 });
  assert.equal(second.status, 400, `second GET: ${second.status} ${JSON.stringify(second.body)}`);
  const res = await first;
  assert.equal(res.status, 200, `first GET: ${res.status} ${JSON.stringify(res.body)}`);
  assert.ok(packets(res.body).includes("1"), `first GET returned ${JSON.stringify(res.body)}, want a close packet`);
  await waitSessionGone(stack, sid, 2000);
  await assertServesFreshClient(stack, assert);
});
