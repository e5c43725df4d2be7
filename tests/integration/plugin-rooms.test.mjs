// Rooms and emit_to through the real stack (tests/plugins/features.c):
// join/leave/rooms, emitting to a room, to the union of rooms, all but some
// rooms, the whole namespace, everyone but the sender, volatile, binary
// arguments, another namespace; fetch_sockets with rooms, data and the
// handshake; names that are not UTF-8 text refused by each call. Two fcgi
// processes.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { closeClient, closeAllClients, emitAck } from "./lib/client.mjs";
import { SKIP_REFERENCE as skip, startFeaturesStack, connectF, deliveries, shift } from "./lib/features.mjs";
import { toBuffer, sleep } from "./lib/util.mjs";

const T = { timeout: 60000, skip };

let stack;
before(async () => {
  if (!skip) stack = await startFeaturesStack({ fcgi: 2 });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

/** n fresh sockets on nsp, each joined to the rooms rooms[i] (an array). */
async function sockets(rooms, nsp = "/f") {
  const out = [];
  for (const r of rooms) {
    const { socket } = await connectF(stack, nsp);
    if (r.length) await emitAck(socket, "join", [r]);
    out.push(socket);
  }
  return out;
}

const closeAll = (list) => list.forEach(closeClient);
/** Each of lines was logged by the features plugin. */
const assertLogged = (lines) =>
  lines.forEach((line) => assert.ok(stack.stderr().includes(`features.so: ${line}`), line));
const counts = (got) => got.map((g) => g.length);
const sorted = (a) => [...a].sort();

// ---- membership ----------------------------------------------------------------

test("rooms(): a new socket is in the room of its own id only", T, async () => {
  const [s] = await sockets([[]]);
  try {
    assert.deepEqual(await emitAck(s, "rooms", []), [[s.id]]);
  } finally {
    closeClient(s);
  }
});

test("join and leave: rooms() follows, own id always included", T, async () => {
  const [s] = await sockets([[]]);
  try {
    assert.deepEqual(sorted((await emitAck(s, "join", ["a"]))[0]), sorted([s.id, "a"]));
    assert.deepEqual(sorted((await emitAck(s, "join", [["b", "c"]]))[0]), sorted([s.id, "a", "b", "c"]));
    assert.deepEqual(sorted((await emitAck(s, "join", ["a"]))[0]), sorted([s.id, "a", "b", "c"]), "joining twice is once");
    await shift(stack);
    assert.deepEqual(sorted((await emitAck(s, "leave", ["b"]))[0]), sorted([s.id, "a", "c"]));
    assert.deepEqual(sorted((await emitAck(s, "leave", ["nope"]))[0]), sorted([s.id, "a", "c"]), "leaving a room not joined is fine");
    await shift(stack);
    assert.deepEqual(sorted((await emitAck(s, "rooms", []))[0]), sorted([s.id, "a", "c"]), "seen by the other process");
  } finally {
    closeClient(s);
  }
});

test("rooms are per namespace: the same room name on /tenant-x is another room", T, async () => {
  const [f] = await sockets([["shared"]]);
  const { socket: t } = await connectF(stack, "/tenant-x");
  try {
    const { result, got } = await deliveries([f, t], "to-shared", () =>
      emitAck(f, "emit-to", [{ event: "to-shared", rooms: ["shared"] }]), [1, 0]);
    assert.deepEqual(result, [1]);
    assert.deepEqual(counts(got), [1, 0]);
  } finally {
    closeAll([f, t]);
  }
});

// ---- emit_to ---------------------------------------------------------------------

test("emit_to a room: its members, sender included when a member, nobody else", T, async () => {
  const list = await sockets([["r"], ["r"], [], ["other"]]);
  try {
    const { result, got } = await deliveries(list, "hi", () =>
      emitAck(list[0], "emit-to", [{ event: "hi", args: ["there", 1], rooms: ["r"] }]), [1, 1, 0, 0]);
    assert.deepEqual(result, [2], "emit_to returns the number of sockets reached");
    assert.deepEqual(counts(got), [1, 1, 0, 0]);
    assert.deepEqual(got[1][0], ["there", 1]);
  } finally {
    closeAll(list);
  }
});

test("emit_to a room from a non-member", T, async () => {
  const list = await sockets([["r2"], ["r2"], []]);
  try {
    const { result, got } = await deliveries(list, "hi", () =>
      emitAck(list[2], "emit-to", [{ event: "hi", rooms: ["r2"] }]), [1, 1, 0]);
    assert.deepEqual(result, [2]);
    assert.deepEqual(counts(got), [1, 1, 0]);
    assert.deepEqual(got[0][0], [], "no arguments");
  } finally {
    closeAll(list);
  }
});

test("emit_to several rooms: the union, each socket once", T, async () => {
  const list = await sockets([["u1"], ["u2"], ["u1", "u2"], ["u3"], []]);
  try {
    const { result, got } = await deliveries(list, "u", () =>
      emitAck(list[4], "emit-to", [{ event: "u", args: [1], rooms: ["u1", "u2"] }]), [1, 1, 1, 0, 0]);
    assert.deepEqual(result, [3]);
    assert.deepEqual(counts(got), [1, 1, 1, 0, 0]);
  } finally {
    closeAll(list);
  }
});

test("emit_to rooms except rooms", T, async () => {
  const list = await sockets([["e"], ["e", "vip"], ["e", "muted"], ["vip"]]);
  try {
    const { result, got } = await deliveries(list, "ex", () =>
      emitAck(list[3], "emit-to", [{ event: "ex", rooms: ["e"], except: ["vip", "muted"] }]), [1, 0, 0, 0]);
    assert.deepEqual(result, [1]);
    assert.deepEqual(counts(got), [1, 0, 0, 0]);
  } finally {
    closeAll(list);
  }
});

test("emit_to one socket through the room of its id", T, async () => {
  const list = await sockets([[], [], []]);
  try {
    const { result, got } = await deliveries(list, "dm", () =>
      emitAck(list[0], "emit-to", [{ event: "dm", args: ["psst"], rooms: [list[2].id] }]), [0, 0, 1]);
    assert.deepEqual(result, [1]);
    assert.deepEqual(counts(got), [0, 0, 1]);
    assert.deepEqual(got[2][0], ["psst"]);
  } finally {
    closeAll(list);
  }
});

test("emit_to the whole namespace (no rooms): every socket of /f, none elsewhere", T, async () => {
  // other tests' sockets are closed: count only ours
  const list = await sockets([[], ["x"], []]);
  const { socket: t } = await connectF(stack, "/tenant-y");
  try {
    const { result, got } = await deliveries([...list, t], "all", () =>
      emitAck(list[0], "emit-to", [{ event: "all", args: ["everyone"] }]), [1, 1, 1, 0]);
    assert.ok(result[0] >= 3, `reached ${result[0]}`);
    assert.deepEqual(counts(got), [1, 1, 1, 0]);
  } finally {
    closeAll([...list, t]);
  }
});

test("emit_to another namespace (t->nsp)", T, async () => {
  const [f] = await sockets([[]]);
  const { socket: t } = await connectF(stack, "/tenant-z");
  try {
    const { result, got } = await deliveries([f, t], "cross", () =>
      emitAck(f, "emit-to", [{ event: "cross", args: [1], nsp: "/tenant-z" }]), [0, 1]);
    assert.deepEqual(result, [1]);
    assert.deepEqual(counts(got), [0, 1]);
  } finally {
    closeAll([f, t]);
  }
});

test("broadcast: everyone but the sender (whole namespace and a room)", T, async () => {
  const list = await sockets([["b"], ["b"], []]);
  try {
    let r = await deliveries(list, "bc", () => emitAck(list[0], "emit-to", [{ event: "bc", broadcast: true }]), [0, 1, 1]);
    assert.deepEqual(counts(r.got), [0, 1, 1]);
    r = await deliveries(list, "bcr", () => emitAck(list[0], "emit-to", [{ event: "bcr", rooms: ["b"], broadcast: true }]), [0, 1, 0]);
    assert.deepEqual(r.result, [1]);
    assert.deepEqual(counts(r.got), [0, 1, 0]);
  } finally {
    closeAll(list);
  }
});

test("volatile: delivered to clients waiting for packets", T, async () => {
  const list = await sockets([["v"], ["v"]]);
  try {
    await sleep(300); // both clients are idle: each has a GET held
    const { result, got } = await deliveries(list, "vol", () =>
      emitAck(list[0], "emit-to", [{ event: "vol", args: [1], rooms: ["v"], volatile: true, broadcast: true }]), [0, 1]);
    assert.deepEqual(result, [1], "an idle polling client (GET held) is ready");
    assert.deepEqual(counts(got), [0, 1]);
  } finally {
    closeAll(list);
  }
});

test("emit_to with binary arguments: attachments reach every recipient", T, async () => {
  const list = await sockets([["bin"], ["bin"]]);
  try {
    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    const { got } = await deliveries(list, "b", () =>
      emitAck(list[0], "emit-to", [{ event: "b", args: ["t", bytes, { n: Buffer.from("xyz") }], rooms: ["bin"] }]), [1, 1]);
    for (const g of got) {
      assert.equal(g.length, 1);
      const [t, b, o] = g[0];
      assert.equal(t, "t");
      assert.ok(toBuffer(b).equals(bytes));
      assert.ok(toBuffer(o.n).equals(Buffer.from("xyz")));
    }
  } finally {
    closeAll(list);
  }
});

test("a socket that left is no longer reached", T, async () => {
  const list = await sockets([["gone"], ["gone"]]);
  try {
    closeClient(list[1]);
    await sleep(500);
    const { result, got } = await deliveries([list[0]], "g", () =>
      emitAck(list[0], "emit-to", [{ event: "g", rooms: ["gone"] }]), [1]);
    assert.deepEqual(result, [1]);
    assert.deepEqual(counts(got), [1]);
  } finally {
    closeAll(list);
  }
});

// ---- fetch_sockets ------------------------------------------------------------------

test("fetch_sockets: id, nsp, rooms, data and handshake of every socket in the rooms", T, async () => {
  const { socket: a } = await connectF(stack, "/f", { query: { who: "a" } });
  const { socket: b } = await connectF(stack, "/f", { query: { who: "b" } });
  const [c] = await sockets([["elsewhere"]]);
  try {
    await emitAck(a, "join", [["fa", "fx"]]);
    await emitAck(b, "join", ["fb"]);
    await emitAck(a, "set-data", [{ name: "a" }]);
    await shift(stack);
    const [list] = await emitAck(c, "fetch", [{ rooms: ["fa", "fb"] }]);
    assert.equal(list.length, 2);
    const byId = Object.fromEntries(list.map((s) => [s.id, s]));
    assert.deepEqual(sorted(Object.keys(byId)), sorted([a.id, b.id]));
    assert.equal(byId[a.id].nsp, "/f");
    assert.deepEqual(sorted(byId[a.id].rooms), sorted([a.id, "fa", "fx"]));
    assert.deepEqual(byId[a.id].data, { name: "a" });
    assert.equal(byId[b.id].data, null);
    assert.equal(byId[a.id].handshake.query.who, "a");
    assert.equal(byId[b.id].handshake.query.who, "b");
    assert.equal(byId[a.id].handshake.address, "127.0.0.1");
  } finally {
    closeAll([a, b, c]);
  }
});

test("fetch_sockets: no rooms means the whole namespace; another nsp by name", T, async () => {
  const list = await sockets([[], []]);
  const { socket: t } = await connectF(stack, "/tenant-fetch");
  try {
    const [all] = await emitAck(list[0], "fetch", [{}]);
    const ids = all.map((s) => s.id);
    assert.ok(ids.includes(list[0].id) && ids.includes(list[1].id));
    assert.ok(!ids.includes(t.id));
    assert.ok(all.every((s) => s.nsp === "/f"));
    const [other] = await emitAck(list[0], "fetch", [{ nsp: "/tenant-fetch" }]);
    assert.deepEqual(other.map((s) => [s.id, s.nsp]), [[t.id, "/tenant-fetch"]]);
    const [none] = await emitAck(list[0], "fetch", [{ rooms: ["nobody-here"] }]);
    assert.deepEqual(none, []);
  } finally {
    closeAll([...list, t]);
  }
});

test("fetch_sockets with ctx NULL (nsp given) from inside a handler", T, async () => {
  const [s] = await sockets([["noctx-room"]]);
  try {
    const [list] = await emitAck(s, "fetch", [{ nsp: "/f", rooms: ["noctx-room"], noctx: true }], 15000);
    assert.deepEqual(list.map((x) => x.id), [s.id]);
  } finally {
    closeClient(s);
  }
});

// ---- names that are not text ----------------------------------------------------------

test("names a plugin gives that are not UTF-8 text are refused by the call, alike on either store", T, async () => {
  // features.c's "bytes" makes a name of a binary's bytes and gives it to
  // one host call. Rooms and namespaces are text (JavaScript strings in the
  // reference; text columns in the store, which PostgreSQL checks): such a
  // call is refused (-1, logged), and the handler, its transaction and the
  // socket carry on.
  const [s, other] = await sockets([["kept"], ["kept"]]);
  try {
    const bad = Buffer.from([0x72, 0xff, 0xfe, 0x6f]); // "r", two bytes never in UTF-8, "o"
    const surrogate = Buffer.from([0xed, 0xa0, 0x80]); // U+D800 encoded: not UTF-8 either
    const { got } = await deliveries([s, other], "bytes-got", async () => {
      for (const what of ["join", "leave", "emit-room", "emit-except", "emit-nsp", "emit-event", "event-emit", "event-ask", "fetch-room", "fetch-nsp", "set-data"]) {
        for (const name of [bad, surrogate]) {
          const [rc, rooms] = await emitAck(s, "bytes", [what, name]);
          assert.equal(rc, -1, `${what} ${name.toString("hex")}`);
          assert.deepEqual(sorted(rooms), sorted([s.id, "kept"]), `${what}: the rooms as they were`);
        }
      }
    }, [0, 0]);
    assert.deepEqual(counts(got), [0, 0], "nothing emitted");
    assertLogged([
      "join: the room name is not UTF-8 text",
      "leave: the room name is not UTF-8 text",
      "emit_to 'bytes-got': a room name is not UTF-8 text",
      "emit_to 'bytes-got': a room name in except is not UTF-8 text",
      "emit_to 'bytes-got': the namespace is not UTF-8 text",
      "emit_to '?': the event name is not UTF-8 text",
      "emit '?': the event name is not UTF-8 text",
      "emit_with_ack '?': the event name is not UTF-8 text",
      "fetch_sockets: a room name is not UTF-8 text",
      "fetch_sockets: the namespace is not UTF-8 text",
      "set_data: the value cannot be stored (binary data, or a string that is not UTF-8 text?)",
    ]);
    // the same calls with a name that is UTF-8 text (as bytes) work
    const text = Buffer.from("ré 房間 🎲", "utf8");
    assert.deepEqual(sorted((await emitAck(s, "bytes", ["join", text]))[1]), sorted([s.id, "kept", "ré 房間 🎲"]));
    assert.equal((await emitAck(s, "bytes", ["fetch-room", text]))[0], 1);
    assert.equal((await emitAck(s, "bytes", ["set-data", text]))[0], 0);
    assert.deepEqual((await emitAck(s, "get-data", []))[0], { k: "ré 房間 🎲" });
    const { got: got2, result } = await deliveries([s, other], "bytes-got", () => emitAck(s, "bytes", ["emit-except", text]), [0, 1]);
    assert.ok(result[0] >= 1, "all of /f but the room's member s: other at least");
    assert.deepEqual(counts(got2), [0, 1]);
    assert.deepEqual(sorted((await emitAck(s, "rooms", []))[0]), sorted([s.id, "kept", "ré 房間 🎲"]), "seen again");
  } finally {
    closeAll([s, other]);
  }
});

test("arguments a plugin builds that cannot be sent are refused by the call, the handler carries on", T, async () => {
  // jansson's *_nocheck makes strings and keys of any bytes; arrays can be
  // nested past the encoder's limit. Such an emit, emit_to, ack or
  // emit_with_ack fails alone (-1, logged) before anything is written;
  // before, it failed the handler's whole transaction.
  const [s, other] = await sockets([["kept"], ["kept"]]);
  try {
    const bad = Buffer.from([0x61, 0xc0, 0xaf]); // an overlong "/": not UTF-8
    const { got } = await deliveries([s, other], "bytes-got", async () => {
      for (const what of ["arg-emit", "arg-emit-to", "arg-ack", "arg-ask", "arg-key"]) {
        const [rc, rooms] = await emitAck(s, "bytes", [what, bad]);
        assert.equal(rc, -1, what);
        assert.deepEqual(sorted(rooms), sorted([s.id, "kept"]), `${what}: the handler went on`);
      }
      const [rc] = await emitAck(s, "bytes", ["arg-deep", Buffer.from("x")]);
      assert.equal(rc, -1, "arg-deep");
    }, [0, 0]);
    assert.deepEqual(counts(got), [0, 0], "nothing emitted");
    assertLogged([
      "emit 'bytes-got': the arguments hold a string that is not UTF-8 text",
      "emit_to 'bytes-got': the arguments hold a string that is not UTF-8 text",
      "ack: the arguments hold a string that is not UTF-8 text",
      "emit_with_ack 'bytes-got': the arguments hold a string that is not UTF-8 text",
      "emit 'bytes-got': the arguments hold a key that is not UTF-8 text",
      "emit 'bytes-got': the arguments hold arrays or objects nested too deep",
    ]);
    // the same with text: sent
    const text = Buffer.from("ré", "utf8");
    const { got: got2 } = await deliveries([s], "bytes-got", async () => {
      for (const what of ["arg-emit", "arg-emit-to", "arg-key"])
        assert.equal((await emitAck(s, "bytes", [what, text]))[0], what === "arg-emit-to" ? 1 : 0, what);
    }, [3]);
    assert.deepEqual(got2[0], [["ré"], ["ré"], [{ ré: true }]]);
  } finally {
    closeAll([s, other]);
  }
});
