// The chat example plugin (plugins/chat.c) through the real stack: nicknames
// in socket data, rooms, "joined"/"said"/"left" to the right members, member
// lists from fetch_sockets, "left" when a member goes away. Two fcgi
// processes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, pluginPath, IS_REFERENCE } from "./lib/stack.mjs";
import { makeClient, whenConnected, closeClient, closeAllClients, emitAck, nextOn } from "./lib/client.mjs";
import { deliveries } from "./lib/features.mjs";
import { toBuffer } from "./lib/util.mjs";

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

// The smallest PNG there is (1x1, transparent) and a fake one of any size
// (the plugin checks the type's first bytes, not the whole file).
const PNG_1X1 = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082",
  "hex",
);
function fakePng(size) {
  const b = Buffer.alloc(size, 0x5a);
  PNG_1X1.copy(b, 0, 0, 8);
  return b;
}

test("image: everyone in the room gets the bytes as binary, the sender too; outsiders do not", T, async () => {
  const ann = await member("ann");
  const bob = await member("bob");
  const eve = await member("eve");
  try {
    await ack(ann, "join", "pics");
    await ack(bob, "join", "pics");
    const t0 = Date.now();
    const { result, got } = await deliveries(
      [ann, bob, eve],
      "image",
      () => ack(ann, "image", { room: "pics", type: "image/png", data: PNG_1X1 }),
      [1, 1, 0],
    );
    assert.deepEqual(result, { ok: true });
    for (const g of got.slice(0, 2)) {
      assert.equal(g.length, 1);
      const [m] = g[0];
      assert.deepEqual(Object.keys(m).sort(), ["data", "nick", "room", "time", "type"]);
      assert.equal(m.nick, "ann");
      assert.equal(m.room, "pics");
      assert.equal(m.type, "image/png");
      assert.ok(Buffer.isBuffer(m.data) || m.data instanceof ArrayBuffer, "data arrives as binary");
      assert.ok(toBuffer(m.data).equals(PNG_1X1), "the same bytes");
      assert.ok(Math.abs(m.time - t0) < 60000, `time ${m.time}`);
    }
    assert.equal(got[2].length, 0);
  } finally {
    [ann, bob, eve].forEach(closeClient);
  }
});

test("image: 512 KB is accepted, one byte more is refused with an ack error", T, async () => {
  const ann = await member("ann");
  try {
    await ack(ann, "join", "big");
    const ok = nextOn(ann, "image", 20000);
    assert.deepEqual(
      (await emitAck(ann, "image", [{ room: "big", type: "image/png", data: fakePng(512 * 1024) }], 20000))[0],
      { ok: true },
    );
    assert.equal(toBuffer((await ok)[0].data).length, 512 * 1024);
    const r = (await emitAck(ann, "image", [{ room: "big", type: "image/png", data: fakePng(512 * 1024 + 1) }], 20000))[0];
    assert.deepEqual(r, { ok: false, error: "an image is 1 byte to 512 KB" });
  } finally {
    closeClient(ann);
  }
});

test("image: hostile input is refused (type, bytes, shape, membership) and sent to no one", T, async () => {
  const ann = await member("ann");
  const eve = await member("eve");
  try {
    await ack(ann, "join", "safe");
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
    const bad = [
      [{ room: "safe", type: "image/svg+xml", data: svg }, "not a PNG, JPEG, GIF or WebP image of the type given"],
      [{ room: "safe", type: "image/png", data: Buffer.from("<html>not a png</html>") }, "not a PNG, JPEG, GIF or WebP image of the type given"],
      [{ room: "safe", type: "image/jpeg", data: PNG_1X1 }, "not a PNG, JPEG, GIF or WebP image of the type given"],
      [{ room: "safe", type: "image/png\u0000x", data: PNG_1X1 }, "not a PNG, JPEG, GIF or WebP image of the type given"],
      [{ room: "safe", type: "image/png", data: PNG_1X1.toString("base64") }, "image {room, type, data}: data binary"],
      [{ room: "safe", type: "image/png", data: Buffer.alloc(0) }, "an image is 1 byte to 512 KB"],
      [{ room: "safe", data: PNG_1X1 }, "image {room, type, data}: data binary"],
      [{ type: "image/png", data: PNG_1X1 }, "image {room, type, data}: data binary"],
      ["safe", "image {room, type, data}: data binary"],
    ];
    const { got } = await deliveries([ann, eve], "image", async () => {
      for (const [arg, error] of bad)
        assert.deepEqual(await ack(ann, "image", arg), { ok: false, error }, JSON.stringify(arg).slice(0, 80));
      // eve is no member of "safe"
      assert.deepEqual(await ack(eve, "image", { room: "safe", type: "image/png", data: PNG_1X1 }), {
        ok: false,
        error: "not in this room",
      });
    }, [0, 0]);
    assert.equal(got[0].length + got[1].length, 0, "nothing was sent");
  } finally {
    [ann, eve].forEach(closeClient);
  }
});
