// The security controls: a plugin's allow_request hook (tests/plugins/allow.c)
// refusing handshakes as the reference server's allowRequest does, on
// polling and on the WebSocket, and plugins built for ABI 1.0 still loading.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IS_REFERENCE, pluginPath, stacksForFile, testPluginPath } from "./lib/stack.mjs";
import { connectedSession, eioUrl, errorBody, rawGet, request, send, waitSessionGone } from "./lib/eio.mjs";
import { assertServesFreshClient, closeAllClients, connectClient, makeClient } from "./lib/client.mjs";
import { withTimeout } from "./lib/util.mjs";
import { IS_PG } from "./lib/store.mjs";

const skip = IS_REFERENCE ? "siogate only (plugins)" : false;
const T = { timeout: 90000, skip };

after(closeAllClients);
const stackWith = stacksForFile(after);

let allowStack;
async function withAllow() {
  if (!allowStack)
    allowStack = await stackWith({ plugin: [pluginPath("echo"), testPluginPath("allow")] });
  return allowStack;
}

test("allow_request: a refusal with code 4 is 403 {code:4,message} on polling and WebSocket", T, async () => {
  const s = await withAllow();
  const r = await request(eioUrl(s, { deny: "code4" }));
  assert.equal(r.status, 403);
  assert.match(r.headers.get("content-type"), /^application\/json/);
  assert.deepEqual(errorBody(r), { code: 4, message: "Go away" });
  const ws = await rawGet(eioUrl(s, { transport: "websocket", deny: "code4" }), { upgrade: true });
  assert.equal(ws.status, 403);
  assert.deepEqual(JSON.parse(ws.body), { code: 4, message: "Go away" });
});

test("allow_request: another code is 400; no refuse() is 403 Forbidden; a bad code is code 4", T, async () => {
  const s = await withAllow();
  let r = await request(eioUrl(s, { deny: "code3" }));
  assert.equal(r.status, 400);
  assert.deepEqual(errorBody(r), { code: 3, message: "Bad client" });
  r = await request(eioUrl(s, { deny: "plain" }));
  assert.equal(r.status, 403);
  assert.deepEqual(errorBody(r), { code: 4, message: "Forbidden" });
  r = await request(eioUrl(s, { deny: "badcode" }));
  assert.equal(r.status, 403);
  assert.deepEqual(errorBody(r), { code: 4, message: "nine" });
});

test("allow_request: the handler sees transport, origin, address and headers", T, async () => {
  const s = await withAllow();
  const r = await request(eioUrl(s, { deny: "show" }), {
    headers: { Origin: "http://a.example", "User-Agent": "sg-test/1" },
  });
  assert.equal(r.status, 403);
  assert.deepEqual(errorBody(r), { code: 4, message: "polling|http://a.example|127.0.0.1|sg-test/1" });
  const ws = await rawGet(eioUrl(s, { transport: "websocket", deny: "show" }), {
    upgrade: true,
    headers: { "User-Agent": "sg-test/2" },
  });
  assert.equal(ws.status, 403);
  assert.deepEqual(JSON.parse(ws.body), { code: 4, message: "websocket|-|127.0.0.1|sg-test/2" });
});

test("allow_request: socket.io-client refused gets connect_error; clients let through are served", T, async () => {
  const s = await withAllow();
  const refused = makeClient(s, "/", { query: { deny: "code4" } });
  const err = await withTimeout(new Promise((r) => refused.once("connect_error", r)), 10000, "connect_error");
  assert.ok(err instanceof Error);
  assert.equal(refused.connected, false);
  const wsRefused = makeClient(s, "/", { query: { deny: "code4" }, transports: ["websocket"] });
  await withTimeout(new Promise((r) => wsRefused.once("connect_error", r)), 10000, "connect_error");
  await assertServesFreshClient(s, assert);
  const { socket } = await connectClient(s, "/", { transports: ["websocket"] });
  assert.equal(socket.connected, true);
});

test("ABI 1.0: a plugin built before allow_request loads beside a 1.1 one and serves", T, async () => {
  const s = await stackWith({
    plugin: [pluginPath("echo"), testPluginPath("abi_1_0"), testPluginPath("allow")],
  });
  const { socket } = await connectClient(s, "/old").catch(async () => {
    // /old sends no "auth" event: connectClient only needs the connect
    throw new Error("could not connect to /old");
  });
  const got = withTimeout(new Promise((r) => socket.once("hello-from-1.0", () => r(true))), 5000, "hello-from-1.0");
  socket.emit("hello");
  assert.equal(await got, true);
  const r = await request(eioUrl(s, { deny: "code4" }));
  assert.equal(r.status, 403);
});

// ---------------------------------------------------------------- the io cookie
// Off by default, as engine.io's `cookie` option; these run against the
// reference server too (reference/options.mjs maps the same keys), except
// the WebSocket-only handshake: engine.io 6.6 sets no cookie on its 101
// (its cookie rides on the polling transport's "headers" event), siogate
// does, so that a session that starts on the WebSocket gets one too.

const TC = { timeout: 60000 };

test("cookie: off by default, no Set-Cookie on the handshake", TC, async () => {
  const s = await stackWith({});
  const r = await request(eioUrl(s));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("set-cookie"), null);
  const ws = await rawGet(eioUrl(s, { transport: "websocket" }), { upgrade: true });
  assert.equal(ws.status, 101);
  assert.equal(ws.headers["set-cookie"], undefined);
});

test("cookie = io: Set-Cookie io=<sid>; Path=/; HttpOnly; SameSite=Lax on the handshake only", TC, async () => {
  const s = await stackWith({ cookie: "io" });
  const r = await request(eioUrl(s));
  assert.equal(r.status, 200);
  const sid = JSON.parse(r.body.slice(1)).sid;
  assert.equal(r.headers.get("set-cookie"), `io=${sid}; Path=/; HttpOnly; SameSite=Lax`);
  // the session's later requests carry none
  const next = await request(eioUrl(s, { sid }), { method: "POST", body: "40" });
  assert.equal(next.status, 200);
  assert.equal(next.headers.get("set-cookie"), null);
  if (IS_REFERENCE) return;
  // a WebSocket-only handshake gets it on the 101
  const ws = await rawGet(eioUrl(s, { transport: "websocket" }), { upgrade: true });
  assert.equal(ws.status, 101);
  assert.match(String(ws.headers["set-cookie"]), /^io=[A-Za-z0-9_-]{20}; Path=\/; HttpOnly; SameSite=Lax$/);
  // an upgrade of a polling session (it has its cookie) gets none
  const up = await rawGet(eioUrl(s, { transport: "websocket", sid }), { upgrade: true });
  assert.equal(up.status, 101);
  assert.equal(up.headers["set-cookie"], undefined);
});

test("cookie keys: name, path, SameSite, HttpOnly, Secure", TC, async () => {
  const s = await stackWith({
    cookie: "sgid",
    cookie_path: "/app",
    cookie_samesite: "Strict",
    cookie_httponly: "no",
    cookie_secure: "yes",
  });
  const r = await request(eioUrl(s));
  const sid = JSON.parse(r.body.slice(1)).sid;
  assert.equal(r.headers.get("set-cookie"), `sgid=${sid}; Path=/app; Secure; SameSite=Strict`);
  if (IS_REFERENCE) return;
  const ws = await rawGet(eioUrl(s, { transport: "websocket" }), { upgrade: true });
  assert.match(String(ws.headers["set-cookie"]), /^sgid=[A-Za-z0-9_-]{20}; Path=\/app; Secure; SameSite=Strict$/);
});

// ---------------------------------------------------------------- file modes
// The store holds every client's handshake (headers, cookies): it, its WAL
// and the doorbell's directory and sockets are the siogate user's alone,
// whatever the umask of whoever started the stack (the tests run with 022).

test("file modes: store and WAL 0600, doorbell directory 0700 and its sockets 0600", T, async (t) => {
  const s = await stackWith({});
  await assertServesFreshClient(s, assert); // the WAL has frames; both daemons wait on bells
  const mode = (p) => (statSync(p).mode & 0o7777).toString(8);
  if (IS_PG) {
    t.diagnostic("SG_STORE=pg: no store file or WAL here (they are the PostgreSQL server's); the doorbell's only");
  } else {
    assert.equal(mode(s.db), "600", "store");
    assert.equal(mode(`${s.db}-wal`), "600", "WAL");
  }
  const bells = s.bellDir; // bell_dir, by default the db path + ".bells"
  assert.equal(mode(bells), "700", "doorbell directory");
  const socks = readdirSync(bells).filter((f) => statSync(join(bells, f)).isSocket());
  assert.ok(socks.length >= 2, `bell sockets: ${socks}`); // siogate-fcgi and siogate-wsd
  for (const f of socks) assert.equal(mode(join(bells, f)), "600", f);
});

test("bell_dir: the doorbell's directory and sockets are where the configuration says", T, async (t) => {
  const base = mkdtempSync(join(tmpdir(), "sg-bells-"));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const bells = join(base, "bells");
  const s = await stackWith({ bell_dir: bells });
  await assertServesFreshClient(s, assert); // a ring from the POST wakes the held GET
  const mode = (p) => (statSync(p).mode & 0o7777).toString(8);
  assert.equal(mode(bells), "700", "doorbell directory");
  const socks = readdirSync(bells).filter((f) => statSync(join(bells, f)).isSocket());
  assert.ok(socks.length >= 2, `bell sockets: ${socks}`); // siogate-fcgi and siogate-wsd
  assert.ok(!existsSync(`${s.db}.bells`), "nothing beside the store");
});

test("logs: a warning names a session by the first 6 characters of its id, never the payload", T, async () => {
  const s = await stackWith({});
  const sid = await connectedSession(s);
  // an invalid Socket.IO packet: siogate warns and closes the session
  const secret = "s3cr3t-payload-4f9a";
  assert.equal((await send(s, sid, `42["x","${secret}"`)).status, 200);
  await waitSessionGone(s, sid, 5000);
  let line;
  for (let i = 0; i < 40 && !line; i++) {
    line = s.stderr().split("\n").find((l) => l.includes(`session ${sid.slice(0, 6)}..`));
    if (!line) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(line, `a warning about session ${sid.slice(0, 6)}.. in:\n${s.stderr().slice(-2000)}`);
  assert.match(line, /invalid Socket\.IO packet/);
  assert.ok(!s.stderr().includes(sid), "the whole session id is not in the log");
  assert.ok(!s.stderr().includes(secret), "the payload is not in the log");
});
