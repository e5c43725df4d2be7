// The chat example plugin (plugins/chat.c) through the real stack: nicknames
// in socket data, rooms, "joined"/"said"/"left" to the right members, member
// lists from fetch_sockets, "left" when a member goes away. Two fcgi
// processes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, pluginPath, IS_REFERENCE } from "./lib/stack.mjs";
import { makeClient, whenConnected, closeClient, closeAllClients, emitAck, nextOn } from "./lib/client.mjs";
import { deliveries } from "./lib/features.mjs";

const skip = IS_REFERENCE ? "siogate only (example plugin)" : false;
const T = { timeout: 60000, skip };

let stack;
before(async () => {
  if (!skip) stack = await startStack({ fcgi: 2, conf: { plugin: [pluginPath("echo"), pluginPath("chat")] } });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

async function member(nick) {
  const s = makeClient(stack, "/chat");
  await whenConnected(s);
  if (nick) assert.deepEqual(await ack(s, "nick", nick), { ok: true });
  return s;
}
const ack = async (s, event, ...args) => (await emitAck(s, event, args))[0];
const sorted = (a) => [...a].sort();

test("nick: set in socket data; a bad one is refused", T, async () => {
  const s = await member();
  try {
    assert.deepEqual(await ack(s, "nick", "ann"), { ok: true });
    for (const bad of ["", "x".repeat(33), 42, null]) {
      const r = await ack(s, "nick", bad);
      assert.equal(r.ok, false, `nick ${JSON.stringify(bad)}`);
      assert.equal(typeof r.error, "string");
    }
  } finally {
    closeClient(s);
  }
});

test("join: the ack lists the members; the others get \"joined\", the joiner does not", T, async () => {
  const ann = await member("ann");
  const bob = await member("bob");
  const eve = await member("eve");
  try {
    assert.deepEqual(await ack(ann, "join", "lobby"), { ok: true, room: "lobby", members: ["ann"] });
    const { result, got } = await deliveries([ann, bob, eve], "joined", () => ack(bob, "join", "lobby"), [1, 0, 0]);
    assert.equal(result.ok, true);
    assert.equal(result.room, "lobby");
    assert.deepEqual(sorted(result.members), ["ann", "bob"]);
    assert.deepEqual(got[0], [[{ nick: "bob", room: "lobby" }]]);
    assert.equal(got[1].length, 0, "not to the joiner");
    assert.equal(got[2].length, 0, "not to others");
  } finally {
    [ann, bob, eve].forEach(closeClient);
  }
});

test("say: everyone in the room gets \"said\", the sender too; outsiders do not", T, async () => {
  const ann = await member("ann");
  const bob = await member("bob");
  const eve = await member("eve");
  try {
    await ack(ann, "join", "room1");
    await ack(bob, "join", "room1");
    const t0 = Date.now();
    const { result, got } = await deliveries([ann, bob, eve], "said", () => ack(ann, "say", { room: "room1", text: "hi 😀" }), [1, 1, 0]);
    assert.deepEqual(result, { ok: true });
    for (const g of got.slice(0, 2)) {
      assert.equal(g.length, 1);
      const [m] = g[0];
      assert.deepEqual({ ...m, time: 0 }, { nick: "ann", room: "room1", text: "hi 😀", time: 0 });
      assert.ok(Math.abs(m.time - t0) < 60000, `time ${m.time}`);
    }
    assert.equal(got[2].length, 0);
    const r = await ack(eve, "say", { room: "room1", text: "let me in" });
    assert.deepEqual(r, { ok: false, error: "not in this room" });
    assert.equal((await ack(ann, "say", { room: "room1" })).ok, false, "text is required");
  } finally {
    [ann, bob, eve].forEach(closeClient);
  }
});

test("members: nicknames (the socket id without one); an empty room is []", T, async () => {
  const ann = await member("ann");
  const anon = await member();
  try {
    await ack(ann, "join", "m");
    await ack(anon, "join", "m");
    const r = await ack(ann, "members", "m");
    assert.equal(r.ok, true);
    assert.deepEqual(sorted(r.members), sorted(["ann", anon.id]));
    assert.deepEqual(await ack(ann, "members", "nobody"), { ok: true, room: "nobody", members: [] });
  } finally {
    [ann, anon].forEach(closeClient);
  }
});

test("leave: the remaining members get \"left\"", T, async () => {
  const ann = await member("ann");
  const bob = await member("bob");
  try {
    await ack(ann, "join", "l");
    await ack(bob, "join", "l");
    const { result, got } = await deliveries([ann, bob], "left", () => ack(bob, "leave", "l"), [1, 0]);
    assert.deepEqual(result, { ok: true });
    assert.deepEqual(got[0], [[{ nick: "bob", room: "l" }]]);
    assert.equal(got[1].length, 0);
    assert.deepEqual((await ack(ann, "members", "l")).members, ["ann"]);
    assert.deepEqual(await ack(bob, "leave", "l"), { ok: false, error: "not in this room" });
  } finally {
    [ann, bob].forEach(closeClient);
  }
});

test("a member that goes away: its rooms get \"left\" with the reason", T, async () => {
  const ann = await member("ann");
  const bob = await member("bob");
  try {
    await ack(ann, "join", "d1");
    await ack(bob, "join", "d1");
    await ack(bob, "join", "d2");
    const left = nextOn(ann, "left", 10000);
    bob.io.engine.close();
    assert.deepEqual(await left, [{ nick: "bob", room: "d1", reason: "transport close" }]);
    assert.deepEqual((await ack(ann, "members", "d1")).members, ["ann"]);
  } finally {
    [ann, bob].forEach(closeClient);
  }
});

test("a room named like a socket id is not that socket's private room", T, async () => {
  const ann = await member("ann");
  const eve = await member("eve");
  try {
    const { got } = await deliveries([ann], "joined", () => ack(eve, "join", ann.id), [0]);
    assert.equal(got[0].length, 0, "ann is not a member of eve's room");
    assert.deepEqual((await ack(eve, "members", ann.id)).members, ["eve"]);
  } finally {
    [ann, eve].forEach(closeClient);
  }
});
