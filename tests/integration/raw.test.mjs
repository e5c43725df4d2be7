// Engine.IO / Socket.IO on the wire, with plain fetch: the exact bytes that
// real clients compare (handshake, CONNECT replies, acks, binary
// attachments, close).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { request, eioUrl, handshake, send, poll, collect, packets, waitSessionGone, RS } from "./lib/eio.mjs";
import { sleep } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

const CONF = { ping_interval: 4000, ping_timeout: 3000, max_payload: 100000 };
let stack;
before(async () => {
  stack = await startStack({ fcgi: 1, conf: CONF });
});
after(async () => {
  if (stack) await stack.stop();
});

const SID = "[A-Za-z0-9_-]+";

async function connected(nspPacket = "40") {
  const { sid } = await handshake(stack);
  const r = await send(stack, sid, nspPacket);
  assert.equal(r.status, 200);
  const { packets: p } = await collect(stack, sid, 2);
  return { sid, replies: p };
}

test("handshake: exact open packet with the configured numbers", T, async () => {
  const res = await request(eioUrl(stack));
  assert.equal(res.status, 200);
  const re = new RegExp(
    `^0\\{"sid":"([A-Za-z0-9_-]{20})","upgrades":\\["websocket"\\],` +
      `"pingInterval":${CONF.ping_interval},"pingTimeout":${CONF.ping_timeout},` +
      `"maxPayload":${CONF.max_payload}\\}$`,
  );
  assert.match(res.body, re);
  assert.match(res.headers.get("content-type") || "", /^text\/plain/);
});

test("handshake: every session gets a new sid", T, async () => {
  const sids = new Set();
  for (let i = 0; i < 10; i++) sids.add((await handshake(stack)).sid);
  assert.equal(sids.size, 10);
});

test('POST is answered 200 "ok"', T, async () => {
  const { sid } = await handshake(stack);
  const r = await send(stack, sid, "40");
  assert.equal(r.status, 200);
  assert.equal(r.body, "ok");
});

test('CONNECT "/": 40{"sid":…} then the auth event, socket sid != engine sid', T, async () => {
  const { sid, replies } = await connected("40");
  assert.match(replies[0], new RegExp(`^40\\{"sid":"${SID}"\\}$`));
  assert.notEqual(JSON.parse(replies[0].slice(2)).sid, sid);
  assert.equal(replies[1], '42["auth",{}]');
});

test('CONNECT "/custom,": 40/custom,{"sid":…} then 42/custom,["auth",{}]', T, async () => {
  const { replies } = await connected("40/custom,");
  assert.match(replies[0], new RegExp(`^40/custom,\\{"sid":"${SID}"\\}$`));
  assert.equal(replies[1], '42/custom,["auth",{}]');
});

test('CONNECT "/custom" without a comma is accepted', T, async () => {
  const { replies } = await connected("40/custom");
  assert.match(replies[0], new RegExp(`^40/custom,\\{"sid":"${SID}"\\}$`));
  assert.equal(replies[1], '42/custom,["auth",{}]');
});

test("CONNECT with an auth payload: echoed as compact JSON", T, async () => {
  const { replies } = await connected('40{"token":"abc","n":1}');
  assert.match(replies[0], new RegExp(`^40\\{"sid":"${SID}"\\}$`));
  assert.equal(replies[1], '42["auth",{"token":"abc","n":1}]');
});

test('CONNECT to an unknown namespace: 44/nope,{"message":"Invalid namespace"}', T, async () => {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40/nope,")).status, 200);
  const { packets: p } = await collect(stack, sid, 1);
  assert.deepEqual(p, ['44/nope,{"message":"Invalid namespace"}']);
  // the Engine.IO session itself survives: "/" can still be joined
  assert.equal((await send(stack, sid, "40")).status, 200);
  const { packets: q } = await collect(stack, sid, 2);
  assert.match(q[0], /^40\{"sid":/);
});

test("event and ack: exact reply packets, in order", T, async () => {
  const { sid } = await connected("40");
  const r = await send(stack, sid, `421["message-with-ack",1,"a"]${RS}42["message",{"a":1}]`);
  assert.equal(r.status, 200);
  const { packets: p } = await collect(stack, sid, 2);
  assert.deepEqual(p, ['431[1,"a"]', '42["message-back",{"a":1}]']);
});

test("multi-digit ack ids are kept", T, async () => {
  const { sid } = await connected("40");
  await send(stack, sid, `42123456["message-with-ack"]`);
  const { packets: p } = await collect(stack, sid, 1);
  assert.deepEqual(p, ["43123456[]"]);
});

test("binary event: placeholder packet plus b64 attachment", T, async () => {
  const { sid } = await connected("40");
  const r = await send(stack, sid, `451-["message",{"_placeholder":true,"num":0}]${RS}bAQID`);
  assert.equal(r.status, 200);
  const { packets: p } = await collect(stack, sid, 2);
  assert.deepEqual(p, ['451-["message-back",{"_placeholder":true,"num":0}]', "bAQID"]);
});

test("binary ack: 6 packet with its attachments", T, async () => {
  const { sid } = await connected("40");
  await send(stack, sid, `452-7["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]${RS}bAQID${RS}b`);
  const { packets: p } = await collect(stack, sid, 3);
  assert.deepEqual(p, ['462-7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', "bAQID", "b"]);
});

test("all queued packets go out in one GET response", T, async () => {
  const { sid } = await connected("40");
  await send(stack, sid, ['42["message",1]', '42["message",2]', '42["message",3]'].join(RS));
  await sleep(300);
  const res = await poll(stack, sid);
  assert.equal(res.status, 200);
  assert.deepEqual(packets(res.body), ['42["message-back",1]', '42["message-back",2]', '42["message-back",3]']);
});

test('close packet while a GET is held: the GET returns "6", then the sid is unknown', T, async () => {
  const { sid } = await connected("40");
  const held = poll(stack, sid, { timeoutMs: 3000 });
  await sleep(300); // let the GET arrive and be held
  const r = await send(stack, sid, "1");
  assert.equal(r.status, 200);
  const res = await held;
  assert.equal(res.status, 200);
  assert.equal(res.body, "6");
  await waitSessionGone(stack, sid, 2000);
});

test("ping rides on the next GET; answering pong keeps the session", T, async () => {
  const { sid } = await connected("40");
  const t0 = Date.now();
  const res = await poll(stack, sid, { timeoutMs: CONF.ping_interval + 2000 });
  assert.equal(res.status, 200);
  assert.equal(res.body, "2");
  const waited = Date.now() - t0;
  assert.ok(waited > CONF.ping_interval / 2, `ping after ${waited} ms, interval ${CONF.ping_interval}`);
  assert.equal((await send(stack, sid, "3")).status, 200);
  // still alive: an event round trip works
  await send(stack, sid, '42["message","alive"]');
  const { packets: p } = await collect(stack, sid, 1);
  assert.deepEqual(p, ['42["message-back","alive"]']);
  await send(stack, sid, "1");
});

// A held GET whose client went away (a closed tab, a dropped connection)
// must give its slot back: the client's next GET is held as usual, not
// taken for a second GET in flight (which closes the session). siogate-fcgi
// learns it when the web server closes the FastCGI connection: nginx does
// (also with fastcgi_keep_conn on); lighttpd and Apache's mod_proxy_fcgi
// keep the backend request running until it is answered (README, known
// limits), so there the test is skipped.
const TELLS_ABANDON = (process.env.SG_SERVER || "lighttpd") === "nginx";
test(
  "an abandoned held GET is released: the next GET is held and gets the next packet",
  { ...T, skip: TELLS_ABANDON ? false : "the web server does not close the backend connection" },
  async () => {
    const { sid } = await connected("40");
    // a GET held, then abandoned by its client
    await assert.rejects(request(eioUrl(stack, { sid }), { timeoutMs: 300 }), /timed out/);
    await sleep(200);
    const next = request(eioUrl(stack, { sid }), { timeoutMs: 5000 });
    await sleep(200);
    assert.equal((await send(stack, sid, '42["message","after"]')).status, 200);
    const res = await next;
    assert.equal(res.status, 200);
    assert.deepEqual(packets(res.body), ['42["message-back","after"]']);
  },
);
