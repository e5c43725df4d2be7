// Faults (issue 11), each with the outcome docs/plugins.md and README
// ("Faults") promise, everyone else served throughout, the store intact:
//
//  - a plugin handler that crashes (tests/plugins/faults.c: abort() inside
//    the handler, after an emit_to) in siogate-fcgi, then in siogate-wsd:
//    that process dies, its transaction is never committed (nobody ever
//    gets the handler's emit), the stack starts it again (--restart, as
//    the systemd units' Restart=on-failure), polling sessions live on,
//    WebSocket clients reconnect;
//  - SIGKILL of siogate-fcgi and siogate-wsd processes while polling and
//    WebSocket clients echo and `siogate emit` numbers a raw polling
//    session: every client goes on, and every emit the CLI committed
//    reaches that session exactly once and in order;
//  - a full disk (the store on a small tmpfs): requests that must write get
//    HTTP 500 and the CLI exit status 1 naming the cause, no process dies,
//    the store stays intact, and service comes back once there is space,
//    without a restart; under siogate-wsd, a turn whose commit fails sends
//    nothing it took (sent once there is space) nor answers to what it
//    received (that WebSocket closes, its client reconnects), and a
//    session opened on a WebSocket gets 500, not a 101. Needs root
//    (mount); skipped otherwise, and on PostgreSQL (SG_STORE=pg: the full
//    disk would be the server's);
//  - a held GET abandoned while another process holds the store's write
//    lock past the timeout: released once the store answers again, so the
//    client's next GET is held as usual. nginx only (the web server that
//    tells siogate-fcgi of an abandoned GET: raw.test.mjs);
//  - a GET whose FastCGI connection is closed before siogate-fcgi read it:
//    held, then released when siogate-fcgi sees the hang-up, so the
//    client's next GET is held as usual.
//
// siogate only (the reference server has no store, processes or plugins).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { BUILDDIR, IS_REFERENCE, pluginPath, startStack, testPluginPath } from "./lib/stack.mjs";
import { closeAllClients, closeClient, connectClient, emitAck, makeClient, whenConnected } from "./lib/client.mjs";
import { eioUrl, handshake, packets, poll, rawGet, rawPoller, request, send } from "./lib/eio.mjs";
import { sleep, waitUntil as until, withTimeout } from "./lib/util.mjs";
import { IS_PG, holdWriteLock, storeQuerySync } from "./lib/store.mjs";

const skip = IS_REFERENCE ? "siogate only (processes, plugins, the store)" : false;
const T = { timeout: 120000, skip };
const SIOGATE = join(BUILDDIR, "gateway", "siogate");
const PLUGINS = [pluginPath("echo"), testPluginPath("faults")];
// clients that reconnect, quickly, as a browser's would
const RECONNECTING = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };

const stacks = [];
after(async () => {
  closeAllClients();
  for (const s of stacks) await s.stop();
});

async function start(opts) {
  const s = await startStack({ restart: true, ...opts, conf: { plugin: PLUGINS, ...(opts.conf || {}) } });
  stacks.push(s);
  return s;
}

/** One acked echo, retried (the socket may be reconnecting) until it answers. */
async function echoes(socket, tag, ms = 15000) {
  return until(
    async () => {
      try {
        return await emitAck(socket, "message-with-ack", [tag], 2000);
      } catch {
        return null;
      }
    },
    ms,
    `an echo of ${tag}`,
  );
}

/**
 * The store intact: SQLite's PRAGMA integrity_check (PostgreSQL has none:
 * its crash safety is its own), and on either store the count of open
 * sessions its triggers keep equal to the sessions open.
 */
function integrity(db) {
  if (!IS_PG) {
    const r = storeQuerySync(db, "PRAGMA integrity_check;", { timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "ok", "PRAGMA integrity_check");
  }
  const c = storeQuerySync(
    db,
    "SELECT CASE WHEN (SELECT n FROM counters WHERE name = 'open_sessions') = " +
      "(SELECT count(*) FROM sessions WHERE state = 0) THEN 'ok' ELSE 'off' END;",
    { timeout: 20000 },
  );
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout, "ok", "the open_sessions counter");
}

function cli(stack, ...args) {
  return spawnSync(SIOGATE, ["--conf", join(stack.dir, "siogate.conf"), ...args], {
    encoding: "utf8",
    timeout: 30000,
  });
}

test("a plugin handler that crashes in siogate-fcgi: the process is started again, its transaction never lands, polling sessions live on", T, async () => {
  const stack = await start({ fcgi: 2 });
  const before = stack.daemons();
  assert.equal(before.filter((d) => d.name === "siogate-fcgi").length, 2, JSON.stringify(before));
  const seen = [];
  const watch = (s, who) => s.on("before-crash", (pid) => seen.push([who, pid]));
  const { socket: ws } = await connectClient(stack, "/", { transports: ["websocket"] });
  watch(ws, "websocket");
  const { socket: p } = await connectClient(stack, "/", RECONNECTING);
  watch(p, "polling");
  const raw = await rawPoller(stack);
  try {
    p.emit("crash");
    // a siogate-fcgi died and another took its place
    await until(
      () => {
        const now = stack.daemons().filter((d) => d.name === "siogate-fcgi");
        return now.length === 2 && now.some((d) => !before.some((b) => b.pid === d.pid));
      },
      15000,
      "a new siogate-fcgi",
    );
    stack.assertAlive();
    const said = /siogate-fcgi #\d \(pid \d+\) exited \(status 134\): starting it again/;
    await until(() => said.test(stack.stderr()), 5000, `the stack says ${said}`);
    // everyone is served: the crashing client (reconnected, or its session
    // lived on), the WebSocket bystander, and the raw session
    assert.deepEqual(await echoes(p, "p"), ["p"]);
    assert.deepEqual(await echoes(ws, "ws"), ["ws"]);
    const n = raw.got.length;
    assert.equal((await send(stack, raw.sid, '42["message","raw"]')).status, 200);
    await until(() => raw.got.slice(n).includes('42["message-back","raw"]'), 10000, "the raw session's echo");
    assert.deepEqual(seen, [], "the crashed handler's emit was never committed");
    assert.ok(!raw.got.some((x) => x.includes("before-crash")), JSON.stringify(raw.got));
    assert.ok(!raw.failures.some((f) => f.startsWith("400")), `the raw session survived: ${raw.failures}`);
  } finally {
    await raw.stop();
    closeClient(p);
    closeClient(ws);
  }
  integrity(stack.db);
});

test("a plugin handler that crashes in siogate-wsd: it is started again, WebSocket clients reconnect, polling clients never notice", T, async () => {
  const stack = await start({ fcgi: 1 });
  const before = stack.daemons().filter((d) => d.name === "siogate-wsd");
  assert.equal(before.length, 1);
  const seen = [];
  const w = makeClient(stack, "/", { ...RECONNECTING, transports: ["websocket"] });
  await whenConnected(w);
  const { socket: p } = await connectClient(stack, "/");
  let reconnects = 0;
  w.io.on("reconnect", () => reconnects++);
  for (const [s, who] of [[w, "websocket"], [p, "polling"]]) s.on("before-crash", (pid) => seen.push([who, pid]));
  try {
    const firstId = w.id;
    w.emit("crash");
    await until(
      () => {
        const now = stack.daemons().filter((d) => d.name === "siogate-wsd");
        return now.length === 1 && now[0].pid !== before[0].pid;
      },
      15000,
      "a new siogate-wsd",
    );
    stack.assertAlive();
    assert.deepEqual(await echoes(w, "w"), ["w"]);
    assert.ok(reconnects >= 1, "the WebSocket client reconnected");
    assert.notEqual(w.id, firstId, "on a new session (recovery is off)");
    assert.equal(p.connected, true, "the polling client stayed connected");
    assert.deepEqual(await emitAck(p, "message-with-ack", ["p"], 5000), ["p"]);
    assert.deepEqual(seen, [], "the crashed handler's emit was never committed");
  } finally {
    closeClient(w);
    closeClient(p);
  }
  integrity(stack.db);
});

test("SIGKILL of siogate-fcgi and siogate-wsd under load: every client goes on, every committed emit arrives once, in order", T, async (t) => {
  const stack = await start({ fcgi: 2 });
  const clients = [];
  for (let i = 0; i < 3; i++) {
    clients.push((await connectClient(stack, "/", RECONNECTING)).socket);
    const w = makeClient(stack, "/", { ...RECONNECTING, transports: ["websocket"] });
    await whenConnected(w);
    clients.push(w);
  }
  const raw = await rawPoller(stack);
  let running = true;
  const counts = clients.map(() => 0);
  // each client echoes one event after the other until told to stop
  const loads = clients.map(async (s, i) => {
    while (running) {
      try {
        await emitAck(s, "message-with-ack", [i], 2000);
        counts[i]++;
      } catch {
        await sleep(50); // reconnecting
      }
    }
  });
  // the CLI numbers events to everyone; committed = exit status 0
  const committed = [];
  let cliErrors = 0;
  const emits = (async () => {
    for (let k = 0; running && k < 2000; k++) {
      const r = cli(stack, "emit", "n", String(k));
      if (r.status === 0) committed.push(k);
      else cliErrors++;
      await sleep(10);
    }
  })();
  const killed = [];
  const kill = (name, nth) => {
    const d = stack.daemons().filter((x) => x.name === name)[nth];
    assert.ok(d, `a ${name} to kill`);
    process.kill(d.pid, "SIGKILL");
    killed.push(d);
  };
  try {
    await sleep(1000);
    kill("siogate-fcgi", 0);
    await sleep(1000);
    kill("siogate-wsd", 0);
    await sleep(1000);
    kill("siogate-fcgi", 1);
    await sleep(1000);
  } finally {
    running = false;
    await withTimeout(Promise.all([...loads, emits]), 30000, "the load to stop");
  }
  stack.assertAlive();
  await until(() => (stack.stderr().match(/starting it again/g) || []).length === 3, 5000,
    () => `3 restarts said: ${stack.stderr().slice(-3000)}`);
  // every client still answers
  for (let i = 0; i < clients.length; i++) assert.deepEqual(await echoes(clients[i], `after-${i}`), [`after-${i}`]);
  assert.ok(committed.length >= 5, `the CLI committed ${committed.length} emits (${cliErrors} failed)`);
  // every committed emit, once, in order
  const want = committed.map((k) => `42["n",${k}]`);
  await until(() => raw.got.filter((x) => x.startsWith('42["n"')).length >= want.length, 15000,
    () => {
      const have = new Set(raw.got);
      const missing = want.filter((w) => !have.has(w));
      return `${want.length} emits at the raw session; missing ${missing.length}: ${missing.slice(0, 10)}; failures (${raw.failures.length}): ${raw.failures.slice(-10).map((f) => f.slice(0, 60).replace(/\s+/g, " "))}; got ${raw.got.length}, last ${raw.got.slice(-3)}`;
    });
  await raw.stop();
  const got = raw.got.filter((x) => x.startsWith('42["n"'));
  assert.deepEqual(got, want, "committed emits at the raw session: lost, duplicated or reordered");
  assert.ok(!raw.failures.some((f) => f.startsWith("400")), `the raw session survived: ${raw.failures}`);
  for (const s of clients) closeClient(s);
  integrity(stack.db);
  t.diagnostic(`echoes per client ${counts.join(" ")}; emits committed ${committed.length}, failed ${cliErrors}`);
});

// ------------------------------------------------------------------ full disk
function tmpfsSkip() {
  if (skip) return skip;
  if (IS_PG) return "SQLite only (SG_STORE=pg): the store's file on a full tmpfs";
  if (process.getuid && process.getuid() !== 0) return "needs root (mounts a tmpfs)";
  return false;
}

/**
 * fn(mnt) with a 6 MB tmpfs mounted at mnt (t skipped when mount fails);
 * unmounted and removed afterwards, whatever fn did.
 */
async function onSmallTmpfs(t, fn) {
  const mnt = join(BUILDDIR, "tests", "integration", ".tmp", `disk-${process.pid}`);
  mkdirSync(mnt, { recursive: true });
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    t.skip(`mount tmpfs: ${m.stderr.trim()}`);
    rmSync(mnt, { recursive: true, force: true });
    return;
  }
  try {
    await fn(mnt);
  } finally {
    for (const s of stacks.splice(0)) await s.stop();
    spawnSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** Fills the rest of the disk at mnt with the file fill. */
function fillDisk(mnt, fill) {
  spawnSync("dd", ["if=/dev/zero", `of=${fill}`, "bs=64k"], { stdio: "ignore", timeout: 20000 });
  const df = execFileSync("df", ["-k", "--output=avail", mnt], { encoding: "utf8" });
  assert.equal(Number(df.trim().split("\n").pop()), 0, `the disk is full: ${df}`);
}

test("a full disk: 500s and a failing CLI while full, nothing dies, the store intact, service back once there is space", { ...T, skip: tmpfsSkip() }, (t) =>
  onSmallTmpfs(t, async (mnt) => {
    const fill = join(mnt, "fill");
    const stack = await start({ fcgi: 1, conf: { db: join(mnt, "siogate.db") } });
    const { socket: held } = await connectClient(stack, "/");
    const { socket: s } = await connectClient(stack, "/");
    assert.deepEqual(await emitAck(s, "message-with-ack", ["before"], 5000), ["before"]);
    fillDisk(mnt, fill);

    // a write that needs new space fails: the CLI exits 1 naming the cause,
    // nothing half-written. (After a checkpoint the WAL reuses its pages, so
    // small writes may still fit: emits of 100 KB until one needs more.)
    const big = JSON.stringify("x".repeat(100 * 1024));
    let r;
    for (let i = 0; i < 60; i++) {
      r = cli(stack, "emit", "news", big);
      if (r.status !== 0) break;
    }
    assert.equal(r.status, 1, `siogate emit on a full disk: ${r.status} ${r.stderr}`);
    assert.match(r.stderr, /full/i);
    // the web side answers what it can: a handshake is stored or gets a 500
    const h = await request(eioUrl(stack, {}));
    assert.ok([200, 500].includes(h.status), `a handshake on a full disk: ${h.status} ${h.body}`);
    stack.assertAlive();
    assert.equal(stack.daemons().length, 2, "siogate-fcgi and siogate-wsd still run");
    assert.doesNotMatch(stack.stderr(), /starting it again/);

    // space again: the same processes serve a new client and the CLI
    rmSync(fill);
    integrity(stack.db);
    const { socket: fresh } = await connectClient(stack, "/");
    assert.deepEqual(await emitAck(fresh, "message-with-ack", ["after"], 5000), ["after"]);
    const news = new Promise((resolve) => fresh.once("news", resolve));
    const r2 = cli(stack, "emit", "news", '"space again"');
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(await withTimeout(news, 5000, "the CLI's emit"), "space again");
    closeClient(held);
    closeClient(s);
    closeClient(fresh);
    integrity(stack.db);
  }));

test("a full disk under siogate-wsd: what a failed commit took or answered is never sent; it goes out once when there is space", { ...T, skip: tmpfsSkip() }, (t) =>
  onSmallTmpfs(t, async (mnt) => {
    const fill = join(mnt, "fill");
    const db = join(mnt, "siogate.db");
    const stack = await start({ fcgi: 1, conf: { db } });
    const WS = { transports: ["websocket"] };
    const { socket: taker } = await connectClient(stack, "/", WS);
    const { socket: sender } = await connectClient(stack, "/", { ...WS, ...RECONNECTING });
    assert.deepEqual(await emitAck(sender, "message-with-ack", ["before"], 5000), ["before"]);
    const news = [];
    taker.on("news", (x) => news.push(x));
    const drops = [];
    sender.on("disconnect", (reason) => drops.push(reason));
    const said = () => stack.stderr().match(/committing this turn's packets failed/g)?.length ?? 0;
    const failedBefore = said();

    // Every commit must fail while the disk is full, so the WAL must grow
    // with each one: it is emptied (TRUNCATE) while the daemons (and their
    // checkpointers) are stopped, and a reader holds it from starting
    // over. The emit to the taker is committed before the disk fills.
    const daemons = stack.daemons();
    let reader;
    try {
      for (const d of daemons) process.kill(d.pid, "SIGSTOP");
      try {
        const ck = storeQuerySync(db, "PRAGMA wal_checkpoint(TRUNCATE);");
        assert.match(ck.stdout, /^0\|/, `the WAL emptied: ${ck.stdout} ${ck.stderr}`);
        const r = cli(stack, "emit", "news", '"while full"');
        assert.equal(r.status, 0, r.stderr);
        reader = spawn("sqlite3", [db], { stdio: ["pipe", "pipe", "inherit"] });
        const reading = new Promise((resolve) => reader.stdout.once("data", resolve));
        reader.stdin.write("BEGIN; SELECT count(*) FROM sessions;\n");
        await withTimeout(reading, 5000, "the reader's snapshot");
        fillDisk(mnt, fill);
      } finally {
        for (const d of daemons) process.kill(d.pid, "SIGCONT");
      }
      // siogate-wsd takes the emit and fails to commit the take: the frame
      // must not go out (the packet is still queued), nor an ack of an
      // event whose turn did not commit
      await until(() => said() > failedBefore, 10000, () => `a failed commit said: ${stack.stderr().slice(-2000)}`);
      const ack = await emitAck(sender, "message-with-ack", ["while full"], 1500).then(
        (a) => a,
        () => null,
      );
      await sleep(1500);
      t.diagnostic(`while full: news ${JSON.stringify(news)}, ack ${JSON.stringify(ack)}, sender's disconnects ${JSON.stringify(drops)}, failed commits ${said() - failedBefore}`);
      assert.deepEqual(news, [], "a take whose commit failed was sent");
      assert.equal(ack, null, "an ack from a turn whose commit failed was sent");
      // the sender knows its event was lost: its WebSocket closed
      assert.ok(drops.length > 0, "the sender's WebSocket stayed open after its packets were lost");
      // a session opened on a WebSocket is not stored: 500, as a polling
      // handshake would get, not a 101 for a session the store never had
      const h = await rawGet(eioUrl(stack, { transport: "websocket" }), { upgrade: true });
      assert.equal(h.status, 500, `a WebSocket handshake while every commit fails: ${h.status} ${h.body}`);
    } finally {
      reader?.stdin.end();
      rmSync(fill, { force: true });
    }
    // space again: the emit goes out once, and both clients are served
    await until(() => news.length > 0, 10000, "the emit once there is space");
    await sleep(500);
    assert.deepEqual(news, ["while full"]);
    assert.deepEqual(await echoes(sender, "after"), ["after"]);
    assert.deepEqual(await echoes(taker, "after"), ["after"]);
    stack.assertAlive();
    assert.doesNotMatch(stack.stderr(), /starting it again/);
    closeClient(taker);
    closeClient(sender);
    integrity(stack.db);
  }));

/**
 * The session lives on after a GET it held went away: its next GET is
 * held (not taken for a second GET in flight, which closes the session)
 * and gets the echo of an event sent after it.
 */
async function nextGetHeld(stack, sid, timeoutMs) {
  const next = request(eioUrl(stack, { sid }), { timeoutMs });
  await sleep(200);
  assert.equal((await send(stack, sid, '42["message","after"]', { timeoutMs })).status, 200);
  const res = await next;
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(packets(res.body), ['42["message-back","after"]']);
}

// Before, a batch that could not release the GET (SQLite: its transaction
// did not begin; PostgreSQL: the release met the lock) forgot it all the
// same: the session kept its token, and the client's next GET was taken
// for a second GET in flight, which closes the session.
test("a held GET abandoned while the store is locked: released once the lock is gone, the session lives on", { ...T, skip: skip || ((process.env.SG_SERVER || "lighttpd") === "nginx" ? false : "the web server does not close the backend connection") }, async () => {
  const stack = await start({ fcgi: 1 });
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  assert.match((await poll(stack, sid)).body, /^40/);
  // a GET held, the lock taken, then the GET abandoned
  const ac = new AbortController();
  const held = fetch(eioUrl(stack, { sid }), { signal: ac.signal }).then(
    (r) => `answered ${r.status}`,
    () => "aborted",
  );
  await sleep(300);
  const lock = await holdWriteLock(stack.db);
  try {
    ac.abort();
    assert.equal(await held, "aborted");
    // the batch that would release it waits out the lock timeout (10 s)
    await until(() => /locked/.test(stack.stderr()), 30000, "siogate-fcgi gives up on the lock");
  } finally {
    await lock.release();
  }
  await nextGetHeld(stack, sid, 15000);
  stack.assertAlive();
});

/** FastCGI records of a GET of path?query (request id 1, FCGI_KEEP_CONN off). */
function fcgiGet(path, query) {
  const record = (type, content) => {
    const h = Buffer.from([1, type, 0, 1, content.length >> 8, content.length & 255, 0, 0]);
    return Buffer.concat([h, content]);
  };
  const pair = (name, value) => {
    const [n, v] = [Buffer.from(name), Buffer.from(value)];
    assert.ok(n.length < 128 && v.length < 128);
    return Buffer.concat([Buffer.from([n.length, v.length]), n, v]);
  };
  const params = Buffer.concat([
    pair("REQUEST_METHOD", "GET"),
    pair("REQUEST_URI", `${path}?${query}`),
    pair("QUERY_STRING", query),
    pair("REMOTE_ADDR", "127.0.0.1"),
  ]);
  return Buffer.concat([
    record(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), // BEGIN_REQUEST, responder
    record(4, params),
    record(4, Buffer.alloc(0)),
    record(5, Buffer.alloc(0)), // STDIN, empty
  ]);
}

// The web server hangs up on a GET before siogate-fcgi has read it (a
// client gone at once). siogate-fcgi reads a request as it accepts its
// connection, and watches the connection (epoll) only once it must wait:
// a held GET's connection must be watched from when it is held, or its
// hang-up goes unseen, the session keeps the GET's token and the client's
// next GET is taken for a second GET in flight (400, the session closed).
// siogate-fcgi is stopped (SIGSTOP) while the request is written to its
// socket and the connection closed, so that both are there when it looks;
// any web server (the request goes to siogate-fcgi's socket itself).
test("a GET hung up before siogate-fcgi read it is released: the next GET is held as usual", T, async () => {
  const stack = await start({ fcgi: 1 });
  const { sid } = await handshake(stack);
  assert.equal((await send(stack, sid, "40")).status, 200);
  assert.match((await poll(stack, sid)).body, /^40/);
  const [fcgi] = stack.daemons().filter((d) => d.name === "siogate-fcgi");
  const argv = readFileSync(`/proc/${fcgi.pid}/cmdline`, "utf8").split("\0");
  const listen = argv[argv.indexOf("--listen") + 1];
  assert.match(listen, /^unix:/, "contrib/stack gives siogate-fcgi a unix socket");
  process.kill(fcgi.pid, "SIGSTOP");
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        const c = createConnection(listen.slice("unix:".length));
        c.on("error", reject);
        c.on("connect", () => c.write(fcgiGet(stack.path, `EIO=4&transport=polling&sid=${sid}`), () => {
          c.destroy();
          resolve();
        }));
      }),
      5000,
      "the GET written to siogate-fcgi's socket",
    );
  } finally {
    process.kill(fcgi.pid, "SIGCONT");
  }
  await sleep(300);
  await nextGetHeld(stack, sid, 5000);
  stack.assertAlive();
});
