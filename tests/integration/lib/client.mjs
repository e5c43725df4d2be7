// socket.io-client helpers: clients forced to long-polling, never
// reconnecting, each on its own Engine.IO session unless a Manager is
// shared on purpose. Every client made here is remembered, so that a test
// file can close whatever a failed test left open.

import { io, Manager } from "socket.io-client";
import { withTimeout } from "./util.mjs";

export const CLIENT_OPTS = Object.freeze({
  transports: ["polling"],
  forceNew: true,
  reconnection: false,
  timeout: 10000,
});

const open = new Set();

/** io(url + nsp) with the test options; not yet connected. */
export function makeClient(stack, nsp = "/", opts = {}) {
  const s = io(stack.url + nsp, { ...CLIENT_OPTS, path: stack.path, ...opts });
  open.add(s);
  return s;
}

/** A Manager (one Engine.IO session) for multiplexing several namespaces. */
export function makeManager(stack, opts = {}) {
  const m = new Manager(stack.url, { ...CLIENT_OPTS, path: stack.path, ...opts });
  const socket = m.socket.bind(m);
  m.socket = (nsp, o) => {
    const s = socket(nsp, o);
    open.add(s);
    return s;
  };
  return m;
}

/** Resolves when `socket` is connected; rejects on connect_error/timeout. */
export function whenConnected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve(socket);
  let onConnect, onError;
  const p = new Promise((resolve, reject) => {
    onConnect = () => resolve(socket);
    onError = (err) => reject(new Error(`connect_error: ${err && err.message}`));
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
  });
  return withTimeout(p, ms, `connect to ${socket.nsp}`).finally(() => {
    socket.off("connect", onConnect);
    socket.off("connect_error", onError);
  });
}

/**
 * Connects a client to `nsp` and resolves with {socket, auth}: the socket
 * once connected and the payload of the "auth" event that the echo
 * application sends on connection.
 */
export async function connectClient(stack, nsp = "/", opts = {}, ms = 10000) {
  const socket = makeClient(stack, nsp, opts);
  const auth = new Promise((resolve) => socket.once("auth", (a) => resolve(a)));
  try {
    await whenConnected(socket, ms);
    const authed = withTimeout(auth, ms, `"auth" event on ${nsp}`);
    authed.catch(() => {}); // rejects only for whoever awaits it
    return { socket, auth: authed };
  } catch (e) {
    closeClient(socket);
    try {
      stack.assertAlive();
    } catch (dead) {
      e.message += `\n${dead.message}`;
    }
    throw e;
  }
}

/** Resolves once the socket's Engine.IO session runs on the WebSocket (at
 * once when it does already): the upgrade of a default client. */
export async function upgraded(socket, ms = 8000) {
  if (socket.io.engine.transport.name !== "websocket")
    await withTimeout(new Promise((r) => socket.io.engine.once("upgrade", r)), ms, "the upgrade to WebSocket");
}

/** Disconnects a client and closes its Engine.IO session. */
export function closeClient(socket) {
  open.delete(socket);
  try {
    socket.disconnect();
    if (socket.io && socket.io.engine) socket.io.engine.close();
  } catch {
    /* already closed */
  }
}

/** Closes every client made through this module (for after() hooks). */
export function closeAllClients() {
  for (const s of [...open]) closeClient(s);
}

/**
 * Proves that the server still serves a fresh client normally: connect,
 * check the auth event, one event round trip and one ack.
 */
export async function assertServesFreshClient(stack, assert) {
  stack.assertAlive();
  const { socket, auth } = await connectClient(stack, "/", { auth: { fresh: true } });
  try {
    assert.deepStrictEqual(await auth, { fresh: true });
    const back = new Promise((r) => socket.once("message-back", (...a) => r(a)));
    socket.emit("message", "still alive", 42);
    assert.deepStrictEqual(await withTimeout(back, 5000, "message-back"), ["still alive", 42]);
    const acked = await withTimeout(socket.emitWithAck("message-with-ack", "ack?"), 5000, "ack");
    assert.strictEqual(acked, "ack?");
  } finally {
    closeClient(socket);
  }
}

/**
 * Emits `event` with `args` and an ack callback; resolves with ALL the
 * arguments of the ack (emitWithAck() only yields the first one). Rejects
 * after `ms` (socket.io-client's own ack timeout, plus a guard).
 */
export function emitAck(socket, event, args, ms = 5000) {
  const p = new Promise((resolve, reject) => {
    socket.timeout(ms).emit(event, ...args, (err, ...res) => (err ? reject(err) : resolve(res)));
  });
  return withTimeout(p, ms + 1000, `ack of "${event}"`);
}

/**
 * Resolves with the arguments of the next `event` on `socket`; rejects
 * after `ms`, or at once if the socket is disconnected meanwhile.
 */
export function nextOn(socket, event, ms = 5000) {
  let h, d;
  const p = new Promise((resolve, reject) => {
    h = (...a) => resolve(a);
    d = (reason) => reject(new Error(`disconnected (${reason}) while waiting for "${event}" on ${socket.nsp}`));
    socket.once(event, h);
    socket.once("disconnect", d);
  });
  return withTimeout(p, ms, `"${event}" on ${socket.nsp}`).finally(() => {
    socket.off(event, h);
    socket.off("disconnect", d);
  });
}
