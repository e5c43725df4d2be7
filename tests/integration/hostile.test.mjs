// Hostile input beyond plain malformation (badinput.test.mjs has that):
// each kind gets its documented outcome, and a client that was connected
// all along is still served, as is a fresh one.
//
// Outcomes (README, "Known limits"):
//   - JSON nested deeper than 128 arrays/objects (counting the packet's own
//     array: every walk over a tree in siogate is recursive and bounded by
//     it, gateway/socketio.c), invalid UTF-8 in a text packet, more than 10
//     attachments (socket.io-parser's maxAttachments), a placeholder
//     naming an attachment that was not sent: the session ends as a parse
//     error (the reference server, decoding with replacement characters
//     and with no nesting bound of its own, would carry on for the first
//     two);
//   - nesting up to the bound is carried intact.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { assertServesFreshClient, closeAllClients, connectClient, emitAck } from "./lib/client.mjs";
import { send, waitSessionGone, RS, connectedSession } from "./lib/eio.mjs";

const T = { timeout: 60000 };

let stack, bystander;
before(async () => {
  stack = await startStack({ fcgi: 1, conf: { ping_interval: 3000, ping_timeout: 2000 } });
  ({ socket: bystander } = await connectClient(stack, "/"));
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

// body (a string or bytes) ends the session; the bystander and a fresh
// client are served.
async function assertEndsSession(body) {
  const sid = await connectedSession(stack);
  const r = await send(stack, sid, body);
  assert.ok(r.status === 200 || r.status === 400, `status ${r.status} ${r.body}`);
  await waitSessionGone(stack, sid, 3000);
  assert.deepEqual(await emitAck(bystander, "message-with-ack", ["still here?"]), ["still here?"]);
  await assertServesFreshClient(stack, assert);
}

const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);

test("JSON nested 128 deep (the bound, with the packet's array): carried intact", T, async () => {
  let v = [];
  for (let i = 1; i < 127; i++) v = [v];
  const [back] = await emitAck(bystander, "message-with-ack", [v]);
  assert.equal(JSON.stringify(back), nested(127));
});

test("JSON nested 129 deep: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`42["message",${nested(128)}]`);
});

test("JSON nested 100,000 deep: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`42["message",${nested(100000)}]`);
});

test("invalid UTF-8 in a text packet: the session ends; everyone else is served", T, async () => {
  const head = Buffer.from('42["message","a');
  const tail = Buffer.from('b"]');
  await assertEndsSession(Buffer.concat([head, Buffer.from([0xff, 0xfe]), tail]));
});

test("more than 10 attachments announced: the session ends; everyone else is served", T, async () => {
  const att = Array.from({ length: 11 }, (_, i) => `{"_placeholder":true,"num":${i}}`).join(",");
  const bins = Array.from({ length: 11 }, () => "bAQID").join(RS);
  await assertEndsSession(`4511-["message",${att}]${RS}${bins}`);
});

test("a placeholder naming an attachment never sent: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`451-["message",{"_placeholder":true,"num":3}]${RS}bAQID`);
});
