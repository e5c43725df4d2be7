// Connecting: namespaces, socket ids, multiplexing, the auth payload,
// invalid namespaces and a clean client disconnect.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import {
  connectClient,
  makeClient,
  makeManager,
  whenConnected,
  closeClient,
  closeAllClients,
  nextOn,
} from "./lib/client.mjs";
import { waitSessionGone } from "./lib/eio.mjs";
import { withTimeout, sleep } from "./lib/util.mjs";

// every test is bounded even if an await inside were not
const T = { timeout: 60000 };

let stack;
before(async () => {
  stack = await startStack({ fcgi: 1 });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

const ID = /^[A-Za-z0-9_-]+$/;

test('connect to "/": socket id set and distinct from the Engine.IO id', T, async () => {
  const { socket, auth } = await connectClient(stack, "/");
  try {
    assert.ok(socket.connected);
    assert.match(socket.id, ID);
    assert.match(socket.io.engine.id, ID);
    assert.notEqual(socket.id, socket.io.engine.id);
    assert.deepEqual(await auth, {});
  } finally {
    closeClient(socket);
  }
});

test('connect to "/custom": socket id set and distinct from the Engine.IO id', T, async () => {
  const { socket, auth } = await connectClient(stack, "/custom");
  try {
    assert.ok(socket.connected);
    assert.equal(socket.nsp, "/custom");
    assert.match(socket.id, ID);
    assert.notEqual(socket.id, socket.io.engine.id);
    assert.deepEqual(await auth, {});
  } finally {
    closeClient(socket);
  }
});

test('"/" and "/custom" multiplexed over one Engine.IO session', T, async () => {
  const manager = makeManager(stack);
  const a = manager.socket("/");
  const b = manager.socket("/custom", { auth: { who: "custom" } });
  const authA = nextOn(a, "auth", 10000);
  const authB = nextOn(b, "auth", 10000);
  try {
    await Promise.all([whenConnected(a), whenConnected(b)]);
    const eid = manager.engine.id;
    assert.match(eid, ID);
    assert.equal(a.io, b.io, "one manager");
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.id, eid);
    assert.notEqual(b.id, eid);
    assert.deepEqual(await authA, [{}]);
    assert.deepEqual(await authB, [{ who: "custom" }]);
    // the "/" socket still works while "/custom" shares its session
    const back = nextOn(a, "message-back");
    a.emit("message", "via /");
    assert.deepEqual(await back, ["via /"]);
    assert.equal(manager.engine.id, eid, "still the same Engine.IO session");
  } finally {
    closeClient(a);
    closeClient(b);
  }
});

test("auth payload round trip", T, async () => {
  const { socket, auth } = await connectClient(stack, "/", { auth: { token: "abc", n: 1 } });
  try {
    assert.deepEqual(await auth, { token: "abc", n: 1 });
  } finally {
    closeClient(socket);
  }
});

test("auth payload round trip on /custom", T, async () => {
  const payload = { token: "ü✓😀", nested: { list: [1, null, true, "x"] } };
  const { socket, auth } = await connectClient(stack, "/custom", { auth: payload });
  try {
    assert.deepEqual(await auth, payload);
  } finally {
    closeClient(socket);
  }
});

test("no auth payload gives {}", T, async () => {
  const { socket, auth } = await connectClient(stack, "/");
  try {
    assert.deepEqual(await auth, {});
  } finally {
    closeClient(socket);
  }
});

test('invalid namespace: connect_error "Invalid namespace"', T, async () => {
  const socket = makeClient(stack, "/nope");
  try {
    const [err] = await withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect_error", (e) => resolve([e]));
        socket.once("connect", () => reject(new Error("connected to /nope")));
      }),
      10000,
      "connect_error on /nope",
    );
    assert.equal(err.message, "Invalid namespace");
    assert.equal(socket.connected, false);
  } finally {
    closeClient(socket);
  }
});

test("clean disconnect: reason, then the old sid is unknown", T, async () => {
  const { socket } = await connectClient(stack, "/");
  const sid = socket.io.engine.id;
  const reason = new Promise((r) => socket.once("disconnect", (why) => r(why)));
  socket.disconnect();
  assert.equal(await withTimeout(reason, 2000, "disconnect event"), "io client disconnect");
  // The client POSTs "41" and then, once that is written, the close packet
  // "1". Give those a moment to land: a GET of ours that arrived while the
  // client's own GET is still held would be a second concurrent GET, which
  // itself kills the session (and would prove nothing).
  await sleep(300);
  await waitSessionGone(stack, sid, 2000);
  closeClient(socket);
});
