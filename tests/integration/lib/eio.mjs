// Raw Engine.IO over HTTP long-polling with fetch, for checks that a
// well-behaved client library would never make. Every request is bounded
// by an AbortController.

import assert from "node:assert/strict";
import http from "node:http";
import { sleep, withTimeout } from "./util.mjs";

export const RS = "\x1e"; // record separator between packets of a payload

/** URL of the Engine.IO endpoint with the given query parameters. */
export function eioUrl(stack, params = {}) {
  const q = new URLSearchParams({ EIO: "4", transport: "polling", ...params });
  for (const [k, v] of Object.entries(params)) if (v === undefined) q.delete(k);
  return `${stack.url}${stack.path}?${q}`;
}

/**
 * One HTTP request; resolves with {status, body, headers}. Rejects after
 * `timeoutMs` (the request is then aborted).
 */
export async function request(url, { method = "GET", body, headers, timeoutMs = 5000 } = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(url, { method, body, headers, signal: ac.signal });
    const text = await res.text();
    return { status: res.status, body: text, headers: res.headers };
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`timed out after ${timeoutMs} ms: ${method} ${url}`);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Parses an Engine.IO error body ({"code":N,"message":"…"}) or throws. */
export function errorBody(res) {
  try {
    return JSON.parse(res.body);
  } catch {
    throw new Error(`expected a JSON error body, got status ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Splits a polling payload into its packets. */
export const packets = (body) => (body === "" ? [] : body.split(RS));

/** Handshake: resolves with {sid, open (parsed JSON), res}. */
export async function handshake(stack, params = {}) {
  const res = await request(eioUrl(stack, params));
  if (res.status !== 200 || !res.body.startsWith("0{"))
    throw new Error(`handshake failed: ${res.status} ${JSON.stringify(res.body)}`);
  const open = JSON.parse(res.body.slice(1));
  return { sid: open.sid, open, res };
}

export function poll(stack, sid, opts = {}) {
  return request(eioUrl(stack, { sid }), { timeoutMs: 5000, ...opts });
}

export function send(stack, sid, body, opts = {}) {
  return request(eioUrl(stack, { sid }), {
    method: "POST",
    body,
    headers: { "content-type": "text/plain;charset=UTF-8" },
    timeoutMs: 5000,
    ...opts,
  });
}

/**
 * Waits until the session `sid` is gone: a GET answered 400 with
 * {"code":1,"message":"Session ID unknown"}. Meanwhile a GET may be
 * answered 200 only with what a closing session sends: a payload holding
 * the close packet "1" (possibly after other packets), or only noops "6";
 * anything else (e.g. a ping "2") means the session is alive and fails the
 * wait at once, since polling it further would prove nothing. The whole
 * wait is bounded by `deadlineMs`, each GET by what is left of it.
 * Resolves with the 200 bodies seen before the 400.
 */
export async function waitSessionGone(stack, sid, deadlineMs = 2000) {
  const end = Date.now() + deadlineMs;
  const seen = [];
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`session ${sid} still alive after ${deadlineMs} ms (saw ${JSON.stringify(seen)})`);
    let res;
    try {
      res = await poll(stack, sid, { timeoutMs: left });
    } catch (e) {
      throw new Error(`session ${sid} still alive after ${deadlineMs} ms: ${e.message} (saw ${JSON.stringify(seen)})`);
    }
    if (res.status === 400) {
      const err = errorBody(res);
      if (err.code === 1 && err.message === "Session ID unknown") return seen;
      throw new Error(`unexpected 400 body for a closed session: ${res.body}`);
    }
    if (res.status !== 200) throw new Error(`unexpected status ${res.status} ${JSON.stringify(res.body)}`);
    seen.push(res.body);
    const p = packets(res.body);
    if (!p.includes("1") && !p.every((x) => x === "6"))
      throw new Error(`session ${sid} is alive: GET returned ${JSON.stringify(res.body)}`);
    await sleep(20);
  }
}

/**
 * GETs until `n` packets (noop "6" left out) have arrived; resolves with
 * them and with the raw bodies. Bounded by `deadlineMs` overall.
 */
export async function collect(stack, sid, n, deadlineMs = 5000) {
  const end = Date.now() + deadlineMs;
  const got = [];
  const bodies = [];
  while (got.length < n) {
    const left = end - Date.now();
    if (left <= 0) throw new Error(`only ${got.length} of ${n} packets within ${deadlineMs} ms: ${JSON.stringify(got)}`);
    const res = await poll(stack, sid, { timeoutMs: left });
    if (res.status !== 200) throw new Error(`GET: ${res.status} ${JSON.stringify(res.body)}`);
    bodies.push(res.body);
    got.push(...packets(res.body).filter((p) => p !== "6"));
  }
  return { packets: got, bodies };
}

/** A raw session connected to "/" (its CONNECT reply and first event read): its sid. */
export async function connectedSession(stack) {
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  const { packets: p } = await collect(stack, sid, 2, 3000);
  assert.match(p[0], /^40\{"sid":/);
  return sid;
}

/**
 * A GET with node:http, for what fetch cannot do: a chosen local address
 * (`localAddress`, e.g. "127.0.0.2": another client address on loopback)
 * and a WebSocket upgrade (`upgrade: true` sends the WebSocket handshake
 * headers). Resolves with {status, body, headers}; a WebSocket accepted
 * (101) is closed at once. Bounded by `timeoutMs`.
 */
export function rawGet(url, { headers = {}, localAddress, upgrade = false, timeoutMs = 5000 } = {}) {
  const h = { ...headers };
  if (upgrade)
    Object.assign(h, {
      Connection: "Upgrade",
      Upgrade: "websocket",
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    });
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: h, localAddress, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, body, headers: res.headers });
      });
    });
    req.on("upgrade", (res, socket) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: res.statusCode, body: "", headers: res.headers });
    });
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms: GET ${url}`));
    }, timeoutMs);
  });
}

/**
 * A raw polling session connected to "/" on target (a stack, or anything
 * eioUrl takes), whose GETs go on through failed requests (a dying
 * process's or host's 502, a refused or reset connection) as the protocol
 * lets a client: collects every packet it is sent (pings are answered)
 * until stop(). failures gets every failed request; a 400 (the session is
 * gone) ends the loop, a failure of its own. timeoutMs bounds each GET.
 */
export async function rawPoller(target, { timeoutMs = 3000 } = {}) {
  const { sid } = await handshake(target);
  assert.equal((await send(target, sid, "40")).status, 200);
  const got = [];
  const failures = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      let res;
      try {
        res = await poll(target, sid, { timeoutMs });
      } catch (e) {
        failures.push(String(e.message || e));
        await sleep(50);
        continue;
      }
      if (res.status !== 200) {
        failures.push(`${res.status} ${res.body}`);
        if (res.status === 400) break;
        await sleep(50);
        continue;
      }
      for (const p of packets(res.body)) {
        if (p === "2") await send(target, sid, "3").catch((e) => failures.push(`pong: ${e.message}`));
        else got.push(p);
      }
    }
  })();
  return {
    sid,
    got,
    failures,
    async stop() {
      stopped = true;
      await withTimeout(loop, 15000, "the raw poller to stop");
    },
  };
}
