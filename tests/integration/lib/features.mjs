// Helpers for the tests that drive tests/plugins/features.c (the plugin
// that exposes every host function through events on "/f"; its header
// comment lists them).

import { makeClient, makeManager, whenConnected, nextOn, closeClient, emitAck } from "./client.mjs";
import { startStack, pluginPath, testPluginPath, IS_REFERENCE } from "./stack.mjs";
import { withTimeout, sleep } from "./util.mjs";
import { request, eioUrl } from "./eio.mjs";

/** These tests need siogate's plugins: skipped against the reference server. */
export const SKIP_REFERENCE = IS_REFERENCE ? "siogate only (tests the plugin API)" : false;

/** A stack with the echo plugin and the features test plugin. */
export function startFeaturesStack({ fcgi = 1, wsd, conf = {}, env = {} } = {}) {
  return startStack({
    fcgi,
    wsd,
    env,
    conf: { plugin: [pluginPath("echo"), testPluginPath("features")], ...conf },
  });
}

/**
 * Connects to nsp (default "/f") and waits for the plugin's "hello".
 * Resolves with {socket, hello} (hello: the event's arguments).
 * opts.manager: connect through that Manager instead of a new session.
 */
export async function connectF(stack, nsp = "/f", opts = {}) {
  const { manager, ...rest } = opts;
  const socket = manager ? manager.socket(nsp, rest) : makeClient(stack, nsp, rest);
  const hello = nextOn(socket, "hello", 10000);
  hello.catch(() => {});
  if (manager && !manager.engine) manager.open();
  try {
    await whenConnected(socket);
    return { socket, hello: await hello };
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

/** Resolves with the connect_error of a socket that must be refused. */
export function connectError(socket, ms = 10000) {
  let onErr, onConn;
  const p = new Promise((resolve, reject) => {
    onErr = (err) => resolve(err);
    onConn = () => reject(new Error(`${socket.nsp}: connected, but a connect_error was expected`));
    socket.once("connect_error", onErr);
    socket.once("connect", onConn);
  });
  return withTimeout(p, ms, `connect_error on ${socket.nsp}`).finally(() => {
    socket.off("connect_error", onErr);
    socket.off("connect", onConn);
  });
}

/**
 * Resolves with the arguments of the first `event` on socket for which
 * pred(...args) holds; rejects after ms.
 */
export function waitFor(socket, event, pred, ms = 5000) {
  let h;
  const p = new Promise((resolve) => {
    h = (...args) => {
      if (pred(...args)) resolve(args);
    };
    socket.on(event, h);
  });
  return withTimeout(p, ms, `"${event}" (matching) on ${socket.nsp}`).finally(() => socket.off(event, h));
}

/**
 * A client in the room "observers" of "/f": the plugin's disconnect
 * handler tells it {id, reason} of every socket that leaves "/f".
 * gone(id) resolves with the reason for that socket id.
 */
export async function observer(stack) {
  const { socket } = await connectF(stack);
  await emitAck(socket, "join", ["observers"]);
  const seen = new Map();
  const waiters = new Map();
  socket.on("gone", ({ id, reason }) => {
    seen.set(id, reason);
    const w = waiters.get(id);
    if (w) w(reason);
  });
  return {
    socket,
    gone(id, ms = 10000) {
      if (seen.has(id)) return Promise.resolve(seen.get(id));
      return withTimeout(new Promise((r) => waiters.set(id, r)), ms, `"gone" for ${id}`);
    },
  };
}

/**
 * Calls fn, then collects the arrivals of event on each socket: waits until
 * socket i got at least expected[i] of them (5 s at most), then `extra` ms
 * more so that arrivals beyond the expected ones are seen too. Resolves with
 * {result: what fn resolved with, got: per socket, the list of argument
 * arrays}. The caller asserts on got.
 */
export async function deliveries(sockets, event, fn, expected, extra = 300) {
  const got = sockets.map(() => []);
  const hs = sockets.map((s, i) => {
    const h = (...a) => got[i].push(a);
    s.on(event, h);
    return h;
  });
  try {
    const result = await fn();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !got.every((g, i) => g.length >= expected[i])) await sleep(10);
    await sleep(extra);
    return { result, got };
  } finally {
    sockets.forEach((s, i) => s.off(event, hs[i]));
  }
}

/**
 * One request to siogate-fcgi that belongs to no session (answered 400).
 * contrib/stack spreads requests round-robin over the fcgi processes, so
 * this moves a session's next request to the other process.
 */
export async function shift(stack) {
  await request(eioUrl(stack, { sid: "shift-to-the-other-process" }));
}

export { makeManager };
