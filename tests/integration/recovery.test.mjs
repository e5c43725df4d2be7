// Connection state recovery (issue 9): config recovery_window, with the
// real socket.io-client's own connectionStateRecovery support (the pid in
// the CONNECT reply, the offset as an event's last argument, both sent
// back in the next CONNECT):
//
//  - a dropped connection (polling, WebSocket, upgraded) is recovered: the same
//    socket id, its rooms and data, every event sent meanwhile exactly once
//    and in order (a volatile one not), socket.recovered true on the
//    client, and the plugin's connection handler told so;
//  - the reconnect served by another siogate-fcgi / siogate-wsd (the one
//    that served it was killed);
//  - after every siogate process was killed (SIGKILL) or stopped (SIGTERM)
//    and started again (the events of the downtime from `siogate emit`);
//  - a client that had received no event yet (no offset) is recovered too;
//  - a recovered socket skips the connect middlewares (skipMiddlewares);
//  - after the window: a new socket id, recovered false, no old rooms;
//  - SIGKILL of each siogate-fcgi and siogate-wsd during a stream of
//    `siogate emit` events to everyone: every committed event reaches every
//    client once, in order, and every reconnect was a recovery.
//
// The cases on "/" (the echo application) also run against the reference
// server (SG_TARGET=reference, recovery_window becomes its
// connectionStateRecovery.maxDisconnectionDuration); the others need
// siogate's plugins, processes or CLI, or go beyond the reference (which
// recovers only a client that has an offset, within one process).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDDIR, IS_REFERENCE, SRCDIR, pluginPath, startStack, testPluginPath } from "./lib/stack.mjs";
import { closeAllClients, closeClient, emitAck, makeClient, nextOn, whenConnected } from "./lib/client.mjs";
import { sleep, toBuffer, waitUntil as until, withTimeout } from "./lib/util.mjs";
import { IS_PG, sqliteOnly } from "./lib/store.mjs";

const run = promisify(execFile);
const SIOGATE = join(BUILDDIR, "gateway", "siogate");
const T = { timeout: 120000 };
const TS = { timeout: 120000, skip: IS_REFERENCE ? "siogate only (plugins, processes, the CLI, or beyond the reference)" : false };
const WINDOW = 60000;
const PLUGINS = [pluginPath("echo"), testPluginPath("features")];
const RECONNECTING = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };

const stacks = [];
after(async () => {
  closeAllClients();
  for (const s of stacks) await s.stop();
});

async function start({ conf = {}, ...opts } = {}) {
  const s = await startStack({ ...opts, conf: { plugin: PLUGINS, recovery_window: WINDOW, ...conf } });
  stacks.push(s);
  return s;
}

/** `siogate emit` on the stack's store (no server process involved). */
async function cliEmit(stack, ...args) {
  await run(SIOGATE, ["--conf", join(stack.dir, "siogate.conf"), "emit", ...args], { timeout: 30000 });
}

/** `siogate stats --json`: the store's figures. */
async function stats(stack) {
  const { stdout } = await run(SIOGATE, ["--conf", join(stack.dir, "siogate.conf"), "stats", "--json"],
    { timeout: 30000 });
  return JSON.parse(stdout);
}

/** The arguments of every `event` the socket gets, in order. */
function recorder(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Connect and resolve with the first args of `event` (sent on connection). */
async function connectWith(socket, event) {
  const first = event ? nextOn(socket, event, 10000) : null;
  first?.catch(() => {});
  await whenConnected(socket);
  return first ? await first : null;
}

/** Drop the client's connection the way a network failure would look to
 * the server (the transport closes; the socket is not disconnected on
 * purpose), and wait until the client sees it. */
async function drop(socket) {
  const gone = new Promise((r) => socket.once("disconnect", r));
  socket.io.engine.close();
  return withTimeout(gone, 5000, "the client to see its connection gone");
}

/** Connect again (a client made with reconnection off): the CONNECT
 * carries the pid and the last offset the client saw. */
async function reconnect(socket, event) {
  const next = event ? nextOn(socket, event, 10000) : null;
  next?.catch(() => {});
  const connected = whenConnected(socket);
  socket.connect();
  await connected;
  return next ? await next : null;
}

/** The offsets (the last argument, a string) are increasing. */
function assertOffsets(list) {
  let prev = -1n;
  for (const args of list) {
    const off = args[args.length - 1];
    assert.equal(typeof off, "string", `an offset ends ${JSON.stringify(args)}`);
    assert.ok(BigInt(off) > prev, `offsets increase: ${JSON.stringify(list)}`);
    prev = BigInt(off);
  }
}

/** Until the server treats b's socket as gone: an emit to room r counts 0. */
async function noticedGone(a, room, nsp = "/f") {
  await until(
    async () => (await emitAck(a, "emit-to", [{ event: "probe", nsp, rooms: [room] }]))[0] === 0,
    15000,
    "the server to notice the dropped connection",
  );
}

// ---------------------------------------------------------- reference and siogate

test('"/": a dropped connection comes back recovered: the same id, recovered true', T, async () => {
  const stack = await start();
  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    const transport = transports.join("+");
    const b = makeClient(stack, "/", { transports });
    const [auth, off] = await connectWith(b, "auth");
    if (transports.length > 1)
      await until(() => b.io.engine.transport.name === "websocket", 10000, "the upgrade");
    assert.deepEqual(auth, {}, "the CONNECT carried no pid yet");
    assert.equal(typeof off, "string", "the event carries its offset as its last argument");
    assert.equal(b.recovered, false);
    const id = b.id;
    await drop(b);
    const [auth2] = await reconnect(b, "auth");
    assert.equal(b.recovered, true, `${transport}: recovered`);
    assert.equal(b.id, id, `${transport}: the same socket id`);
    assert.equal(typeof auth2.pid, "string", "the CONNECT carried the pid");
    assert.equal(auth2.offset, off, "and the last offset seen");
    // and it works: an echo, with an offset
    const back = nextOn(b, "message-back");
    b.emit("message", "hi");
    const got = await back;
    assert.equal(got[0], "hi");
    assert.equal(typeof got[1], "string");
    assert.notEqual(got[1], off);
    // siogate's offsets are decimals that increase (the reference's are opaque)
    if (!IS_REFERENCE) assert.ok(BigInt(got[1]) > BigInt(off));
    closeClient(b);
  }
});

test('"/": back after the window: a new socket id, recovered false', T, async () => {
  const stack = await start({ conf: { recovery_window: 500 } });
  const b = makeClient(stack, "/");
  await connectWith(b, "auth");
  const id = b.id;
  await drop(b);
  await sleep(1500); // the window passes
  await reconnect(b, "auth");
  assert.equal(b.recovered, false);
  assert.notEqual(b.id, id);
  closeClient(b);
});

test("recovery off (the default): no pid in the CONNECT reply, no offset on events", T, async () => {
  const stack = await start({ conf: { recovery_window: undefined } });
  const b = makeClient(stack, "/");
  const [auth, ...rest] = await connectWith(b, "auth");
  assert.deepEqual(auth, {});
  assert.deepEqual(rest, [], "no offset appended");
  assert.equal(b._pid, undefined, "the CONNECT reply carried no pid");
  const id = b.id;
  await drop(b);
  await reconnect(b, "auth");
  assert.ok(!b.recovered, "recovered is not true");
  assert.notEqual(b.id, id);
  closeClient(b);
});

// ---------------------------------------------------------------- siogate only

for (const transport of ["polling", "websocket"]) {
  test(`${transport}: the same id, rooms and data, the missed events once and in order, the plugin told`, TS, async () => {
    const stack = await start({ fcgi: 2, wsd: 2 });
    const a = makeClient(stack, "/f");
    await connectWith(a, "hello");
    const b = makeClient(stack, "/f", { transports: [transport] });
    const [hello] = await connectWith(b, "hello");
    assert.equal(hello.recovered, false);
    const id = b.id;
    await emitAck(b, "join", ["r"]);
    await emitAck(b, "set-data", [{ k: 1 }]);
    const news = recorder(b, "news");
    assert.deepEqual(await emitAck(a, "emit-to", [{ event: "news", args: [0], rooms: ["r"] }]), [1]);
    await until(() => news.length === 1, 5000, "news 0");
    await drop(b);
    await noticedGone(a, "r");
    // missed: counted as reaching nobody (the ghost is not connected)
    for (let k = 1; k <= 5; k++)
      assert.deepEqual(await emitAck(a, "emit-to", [{ event: "news", args: [k], rooms: ["r"] }]), [0]);
    await emitAck(a, "emit-to", [{ event: "news", args: ["volatile"], rooms: ["r"], volatile: true }]);
    assert.equal((await stats(stack)).sessions.recoverable, 1, "the socket kept");
    const fetched = await emitAck(a, "fetch", [{ nsp: "/f", rooms: ["r"] }]);
    assert.deepEqual(fetched[0], [], "fetchSockets lists no ghost");
    const [hello2] = await reconnect(b, "hello");
    assert.equal(b.recovered, true);
    assert.equal(b.id, id);
    assert.equal(hello2.recovered, true, "the connection handler was told");
    assert.equal(hello2.id, id);
    assert.equal((await stats(stack)).sessions.recoverable, 0, "nothing kept once recovered");
    assert.deepEqual(await emitAck(a, "emit-to", [{ event: "news", args: [6], rooms: ["r"] }]), [1]);
    await until(() => news.length >= 7, 5000, () => `7 news, got ${JSON.stringify(news)}`);
    await sleep(300); // a duplicate would come meanwhile
    assert.deepEqual(news.map((x) => x[0]), [0, 1, 2, 3, 4, 5, 6]);
    assertOffsets(news);
    const [rooms] = await emitAck(b, "rooms", []);
    assert.ok(rooms.includes("r") && rooms.includes(id), `rooms back: ${rooms}`);
    const [data] = await emitAck(b, "get-data", []);
    assert.deepEqual(data, { k: 1 });
    closeClient(a);
    closeClient(b);
  });

  test(`${transport}: the reconnect is served by another process (the one that served it killed)`, TS, async () => {
    const stack = await start({ fcgi: 2, wsd: 2, restart: true });
    const b = makeClient(stack, "/f", { transports: [transport] });
    await connectWith(b, "hello");
    const id = b.id;
    await emitAck(b, "join", ["r"]);
    const news = recorder(b, "news");
    const [who] = await emitAck(b, "whoami", []);
    await drop(b);
    process.kill(who.pid, "SIGKILL");
    for (let k = 1; k <= 3; k++) await cliEmit(stack, "--nsp", "/f", "--to", "r", "news", String(k));
    // and one with a binary argument (an attachment frame kept with its packet)
    const bin = join(stack.dir, "bytes");
    writeFileSync(bin, Buffer.from([1, 2, 3, 250]));
    await cliEmit(stack, "--nsp", "/f", "--to", "r", "--bin", bin, "news", "4");
    await until(() => stack.daemons().length === 4 && !stack.daemons().some((d) => d.pid === who.pid),
      15000, "the killed process started again");
    const [hello] = await reconnect(b, "hello");
    assert.equal(b.recovered, true);
    assert.equal(b.id, id);
    assert.equal(hello.recovered, true);
    const [who2] = await emitAck(b, "whoami", []);
    assert.notEqual(who2.pid, who.pid, "another process");
    await until(() => news.length >= 4, 5000, () => `4 news, got ${JSON.stringify(news)}`);
    await sleep(300);
    assert.deepEqual(news.map((x) => x[0]), [1, 2, 3, 4]);
    assert.deepEqual([...toBuffer(news[3][1])], [1, 2, 3, 250], "the binary argument");
    assertOffsets(news);
    closeClient(b);
  });
}

for (const signal of ["SIGKILL", "SIGTERM"]) {
  test(`after every siogate process was stopped (${signal}) and started again: recovered, the events of the downtime once and in order`, TS, async () => {
    const stack = await start({ fcgi: 2, wsd: 2, restart: true });
    const clients = [];
    for (const transport of ["polling", "websocket"]) {
      const s = makeClient(stack, "/f", { ...RECONNECTING, transports: [transport] });
      await connectWith(s, "hello");
      await emitAck(s, "join", ["r"]);
      clients.push({ s, id: s.id, transport, news: recorder(s, "news"), hellos: recorder(s, "hello") });
    }
    await cliEmit(stack, "--nsp", "/f", "--to", "r", "news", "0");
    await until(() => clients.every((c) => c.news.length === 1), 5000, "news 0");
    const before = stack.daemons();
    assert.equal(before.length, 4);
    // SIGTERM: siogate-wsd closes its sessions ("server shutting down", a
    // recoverable reason), siogate-fcgi answers its held GETs; SIGKILL:
    // nothing is closed, the sessions stay open in the store
    for (const d of before) process.kill(d.pid, signal);
    for (let k = 1; k <= 5; k++) await cliEmit(stack, "--nsp", "/f", "--to", "r", "news", String(k));
    await until(() => {
      const now = stack.daemons();
      return now.length === 4 && now.every((d) => !before.some((b) => b.pid === d.pid));
    }, 20000, "every process started again");
    // the WebSocket client has to come back (its connection ended)
    await until(() => clients.every((c) => c.s.connected && (c.transport === "polling" || c.hellos.length >= 1)),
      20000, "the clients back");
    await cliEmit(stack, "--nsp", "/f", "--to", "r", "news", "6");
    await until(() => clients.every((c) => c.news.length >= 7), 10000,
      () => `7 news each, got ${clients.map((c) => JSON.stringify(c.news.map((x) => x[0])))}`);
    await sleep(300);
    for (const c of clients) {
      assert.equal(c.s.id, c.id, `${c.transport}: the same id`);
      assert.ok(c.hellos.every((h) => h[0].recovered === true), `${c.transport}: every reconnect recovered`);
      if (c.hellos.length > 0) assert.equal(c.s.recovered, true);
      assert.deepEqual(c.news.map((x) => x[0]), [0, 1, 2, 3, 4, 5, 6], c.transport);
      assertOffsets(c.news);
      closeClient(c.s);
    }
  });
}

test("a client that had received no event yet (no offset) is recovered with every event sent meanwhile", TS, async () => {
  const stack = await start();
  const a = makeClient(stack, "/f");
  await connectWith(a, "hello");
  for (const transport of ["polling", "websocket"]) {
    const b = makeClient(stack, "/q", { transports: [transport] });
    await connectWith(b, null);
    const id = b.id;
    await emitAck(b, "join", ["r"]);
    assert.equal(b._lastOffset, undefined, "no event seen");
    const news = recorder(b, "news");
    await drop(b);
    await noticedGone(a, "r", "/q");
    for (let k = 1; k <= 3; k++)
      await emitAck(a, "emit-to", [{ event: "news", args: [k], nsp: "/q", rooms: ["r"] }]);
    await reconnect(b, null);
    assert.equal(b.recovered, true, transport);
    assert.equal(b.id, id);
    await until(() => news.length >= 3, 5000, () => `3 news, got ${JSON.stringify(news)}`);
    await sleep(300);
    assert.deepEqual(news.map((x) => x[0]), [1, 2, 3]);
    const [data] = await emitAck(b, "get-data", []);
    assert.deepEqual(data, { recovered: true }, "the connection handler was told");
    await emitAck(b, "leave", ["r"]);
    closeClient(b);
  }
  closeClient(a);
});

test("a recovered socket skips the connect middlewares (the reference's skipMiddlewares); a new one does not", TS, async () => {
  const stack = await start();
  const b = makeClient(stack, "/f");
  await connectWith(b, "hello");
  const id = b.id;
  await drop(b);
  // the middleware of "/f" refuses a handshake whose query has deny=1
  b.io.opts.query = { deny: "1" };
  const [hello] = await reconnect(b, "hello");
  assert.equal(b.recovered, true);
  assert.equal(b.id, id);
  assert.equal(hello.recovered, true);
  assert.equal(hello.handshake.query.deny, "1", "the new connection's handshake has deny=1");
  closeClient(b);
  const c = makeClient(stack, "/f", { query: { deny: "1" } });
  const refused = new Promise((resolve) => c.once("connect_error", (e) => resolve(e.message)));
  c.connect();
  assert.equal(await withTimeout(refused, 10000, "connect_error"), "denied");
  closeClient(c);
});

test("back after the window: a new socket id, recovered false, no old rooms, nothing of the old socket", TS, async () => {
  const stack = await start({ conf: { recovery_window: 1000 } });
  const a = makeClient(stack, "/f");
  await connectWith(a, "hello");
  const b = makeClient(stack, "/f");
  await connectWith(b, "hello");
  const id = b.id;
  await emitAck(b, "join", ["r"]);
  const news = recorder(b, "news");
  await drop(b);
  await noticedGone(a, "r");
  await emitAck(a, "emit-to", [{ event: "news", args: [1], rooms: ["r"] }]);
  assert.equal((await stats(stack)).sessions.recoverable, 1, "the socket kept");
  // the window passes: the servers' sweep deletes what was kept
  await until(async () => (await stats(stack)).sessions.recoverable === 0, 10000, "the kept socket deleted");
  const [hello] = await reconnect(b, "hello");
  assert.equal(b.recovered, false);
  assert.notEqual(b.id, id);
  assert.equal(hello.recovered, false);
  const [rooms] = await emitAck(b, "rooms", []);
  assert.deepEqual(rooms, [b.id]);
  await sleep(300);
  assert.deepEqual(news, [], "no event of the old socket");
  closeClient(a);
  closeClient(b);
});

test("SIGKILL of each siogate-fcgi and siogate-wsd during a broadcast stream: every committed event reaches every client once, in order", TS, async (t) => {
  const stack = await start({ fcgi: 2, wsd: 2, restart: true });
  const clients = [];
  for (let i = 0; i < 3; i++)
    for (const transport of ["polling", "websocket"]) {
      const s = makeClient(stack, "/f", { ...RECONNECTING, transports: [transport] });
      await connectWith(s, "hello");
      clients.push({ s, id: s.id, n: recorder(s, "n"), hellos: recorder(s, "hello") });
    }
  let running = true;
  const committed = [];
  let failed = 0;
  const stream = (async () => {
    for (let k = 0; running && k < 2000; k++) {
      try {
        await cliEmit(stack, "--nsp", "/f", "n", String(k));
        committed.push(k);
      } catch {
        failed++;
      }
      await sleep(10);
    }
  })();
  // each process of the start, one after the other (those started again
  // meanwhile live on)
  const orig = stack.daemons();
  assert.equal(orig.length, 4);
  const kill = (name, nth) => {
    const d = orig.filter((x) => x.name === name)[nth];
    process.kill(d.pid, "SIGKILL");
  };
  try {
    await sleep(1000);
    kill("siogate-fcgi", 0);
    await sleep(1000);
    kill("siogate-wsd", 0);
    await sleep(1000);
    kill("siogate-fcgi", 1);
    await sleep(1000);
    kill("siogate-wsd", 1);
    await sleep(1000);
  } finally {
    running = false;
    await withTimeout(stream, 30000, "the stream to stop");
  }
  // (a CLI process on PostgreSQL starts a server backend: 150-300 ms an
  // emit on a busy machine, against a few ms on SQLite)
  assert.ok(committed.length >= (IS_PG ? 10 : 20), `${committed.length} emits committed (${failed} failed)`);
  await until(() => clients.every((c) => c.n.length >= committed.length), 20000,
    () => `every client got ${committed.length}: ${clients.map((c) => c.n.length)}`);
  await sleep(300);
  let reconnects = 0;
  for (const [i, c] of clients.entries()) {
    assert.deepEqual(c.n.map((x) => x[0]), committed, `client ${i} (${c.s.io.opts.transports}): lost, duplicated or reordered`);
    assertOffsets(c.n);
    assert.equal(c.s.id, c.id, `client ${i} kept its id`);
    // (the hello of the first connection came before the recorder)
    assert.ok(c.hellos.every((h) => h[0].recovered === true), `client ${i}: every reconnect recovered`);
    // every WebSocket's process was killed: each came back at least once
    if (c.s.io.opts.transports[0] === "websocket")
      assert.ok(c.hellos.length >= 1, `WebSocket client ${i} reconnected`);
    reconnects += c.hellos.length;
    closeClient(c.s);
  }
  t.diagnostic(`emits committed ${committed.length}, failed ${failed}; reconnects ${reconnects}`);
});

test("siogate migrate takes a store of schema 6, with its sessions and sockets, to schema 7", { ...TS, ...sqliteOnly("SQLite's migrations 0001..0007 (PostgreSQL's schema starts at the current one)") }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-migrate-"));
  try {
    const db = join(dir, "old.db");
    const sql = ["0001_init", "0002_speed", "0003_handshakes", "0004_limits", "0005_broadcast_log", "0006_queue_volatile"]
      .map((f) => readFileSync(join(SRCDIR, "schema", `${f}.sql`), "utf8"))
      .join("\n") +
      "\nPRAGMA user_version = 6;" +
      "\nINSERT INTO sessions (sid, transport, created_at, next_ping_at, expires_at)" +
      " VALUES ('AAAAAAAAAAAAAAAAAAAA', 'polling', 1, 2, 3);" +
      "\nINSERT INTO sockets (id, sid, nsp, created_at) VALUES ('SSSSSSSSSSSSSSSSSSSS', 'AAAAAAAAAAAAAAAAAAAA', '/', 1);\n";
    writeFileSync(join(dir, "old.sql"), sql);
    await run("sqlite3", [db, `.read ${join(dir, "old.sql")}`], { timeout: 30000 });
    const conf = join(dir, "siogate.conf");
    writeFileSync(conf, `db = ${db}\nrecovery_window = 1000\n`);
    const { stdout } = await run(SIOGATE, ["--conf", conf, "migrate", "-v"], { timeout: 30000 });
    assert.equal(stdout.trim(), "7");
    const q = async (query) => (await run("sqlite3", [db, query], { timeout: 30000 })).stdout.trim();
    assert.equal(await q("PRAGMA user_version"), "7");
    assert.equal(await q("SELECT id || ':' || coalesce(pid, 'null') FROM sockets"), "SSSSSSSSSSSSSSSSSSSS:null");
    assert.equal(await q("SELECT n FROM counters WHERE name = 'eid'"), "0");
    assert.equal(await q("SELECT count(*) FROM sessions"), "1");
    assert.equal(await q("PRAGMA integrity_check"), "ok");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
