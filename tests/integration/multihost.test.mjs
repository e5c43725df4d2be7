// Two hosts, one PostgreSQL (issue 12): two complete stacks (web server,
// siogate-fcgi, siogate-wsd; contrib/stack) on two ports, each with a
// bell_dir of its own, as two machines would have, sharing ONE database;
// in front of them a round-robin load balancer written here (Node http
// and net, loopback): every HTTP request goes to the next host, every
// WebSocket upgrade too (its own turn), and a host that refuses the
// connection is skipped, as a balancer's health check would. No sticky
// sessions.
//
//  - a real socket.io-client through the balancer, polling only and with
//    the upgrade: it connects, its events are echoed and acked, and its
//    requests provably reach both hosts (counted per host by the balancer,
//    and the plugin's whoami names processes of both stacks);
//  - a room spans clients pinned to A and to B (polling and WebSocket on
//    each): a broadcast from the plugin on A reaches B's clients and one
//    from B reaches A's. B's processes are woken by PostgreSQL's NOTIFY:
//    their bell_dir is not A's, so no datagram of A reaches them. The
//    latency is printed (no timed assertion; the safety re-check alone
//    would take up to a second);
//  - `siogate emit` from a third place (its own conf naming the same db and
//    a third bell_dir) reaches everyone;
//  - killing one whole stack (its web server, siogate-fcgi and siogate-wsd,
//    each by pid, SIGKILL) while the CLI numbers events to everyone loses
//    no committed packet: socket.io clients with connection state
//    recovery, all through the balancer, move to the other host and get
//    every committed event, once, in order; so does a raw polling session,
//    except the events of a response that died with the killed web server
//    (siogate-fcgi had committed it as sent; Engine.IO polling has no
//    acknowledgement, so the next GET counts it as arrived, as with the
//    reference server): those only when its GET to that host failed, one
//    response's worth, consecutive, and nothing else missing, doubled or
//    out of order.
//
// Runs only on PostgreSQL (SG_STORE=pg with SG_TEST_PG: tests/run's
// PostgreSQL pass, or tests/pg-cluster run); skipped otherwise, saying why.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDDIR, IS_REFERENCE, pluginPath, startStack, testPluginPath } from "./lib/stack.mjs";
import { IS_PG, newStore } from "./lib/store.mjs";
import { closeAllClients, closeClient, emitAck, makeClient, whenConnected } from "./lib/client.mjs";
import { rawPoller, request } from "./lib/eio.mjs";
import { sleep, waitUntil as until, withTimeout } from "./lib/util.mjs";

const execFileP = promisify(execFile);

const skip = IS_REFERENCE
  ? "siogate only (two stacks sharing a store)"
  : !IS_PG
    ? "needs SG_STORE=pg (two hosts share one PostgreSQL database): tests/run's PostgreSQL pass, or tests/pg-cluster run"
    : false;
const T = { timeout: 120000, skip };
const SIOGATE = join(BUILDDIR, "gateway", "siogate");
const PLUGINS = [pluginPath("echo"), testPluginPath("features")];
// a held poll lasts up to ping_interval: short, so that a poll cut by the
// kill is soon followed by another
const CONF = { plugin: PLUGINS, ping_interval: 5000, ping_timeout: 5000 };

let work; // scratch directory of this file
const cleanups = [];
after(async () => {
  closeAllClients();
  for (const [what, f] of cleanups.reverse()) {
    try {
      await withTimeout(f(), 30000, what);
    } catch (e) {
      process.stderr.write(`# cleanup: ${e.message}\n`);
    }
  }
  if (work && !process.env.SG_KEEP_TMP) rmSync(work, { recursive: true, force: true });
});

// ------------------------------------------------------------------ the hosts

/**
 * Two stacks on one new database, each with a bell_dir of its own, and the
 * conf file of a third place (the CLI) with a third bell_dir.
 */
async function twoHosts(tag, conf = {}) {
  // (short paths: the bell sockets live in the bell dirs)
  if (!work) work = mkdtempSync(join(tmpdir(), "sg-mh-"));
  const dir = mkdtempSync(join(work, `${tag}-`));
  const store = await newStore(dir);
  cleanups.push([`drop ${store.name}`, () => store.drop()]);
  const host = async (name) => {
    const s = await startStack({
      fcgi: 1,
      store: { ...store, conf: { db: store.db, bell_dir: join(dir, `bells-${name}`) } },
      conf: { ...CONF, ...conf },
    });
    s.name = name;
    cleanups.push([`stop ${tag} ${name}`, () => s.stop()]);
    return s;
  };
  const A = await host("A");
  const B = await host("B");
  // the third place: the same settings (recovery_window makes its emits
  // recoverable events), its own bell_dir, no plugins
  const cliConf = join(dir, "cli.conf");
  const settings = Object.entries({ ...CONF, ...conf }).filter(([k]) => k !== "plugin");
  writeFileSync(cliConf, [`db = ${store.db}`, `bell_dir = ${join(dir, "bells-cli")}`, ...settings.map(([k, v]) => `${k} = ${v}`)].join("\n") + "\n");
  return { A, B, store, cliConf, dir };
}

/** pids of the processes of a stack's process group: the launcher, the web server, the daemons. */
function groupPids(pgid) {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z") out.push({ pid: Number(d), name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

// ------------------------------------------------------------------ the balancer

const HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k.toLowerCase())));

/**
 * A round-robin HTTP and WebSocket balancer on 127.0.0.1 in front of
 * stacks (each {name, url}). Requests and upgrades take turns separately;
 * a host that refuses the connection is skipped (tried once each). Every
 * forwarded request is logged: {host, kind, sid}.
 */
async function startBalancer(stacks) {
  const hosts = stacks.map((s) => ({ name: s.name, port: Number(new URL(s.url).port) }));
  const log = [];
  const turn = { http: 0, upgrade: 0 };
  const next = (kind, tried) => {
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[turn[kind]++ % hosts.length];
      if (!tried.has(h.name)) return h;
    }
    return null;
  };
  const sidOf = (url) => new URL(url, "http://x").searchParams.get("sid");
  const sockets = new Set();

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("error", () => res.destroy());
    req.on("end", () => forward(Buffer.concat(chunks), new Set()));
    function forward(body, tried) {
      const h = next("http", tried);
      if (!h) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("no host answers");
        return;
      }
      let connected = false;
      const preq = http.request(
        { host: "127.0.0.1", port: h.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent: false },
        (pres) => {
          res.writeHead(pres.statusCode, endToEnd(pres.headers));
          pres.pipe(res);
          pres.on("error", () => res.destroy());
          pres.on("aborted", () => res.destroy());
        },
      );
      preq.on("socket", (s) => s.once("connect", () => {
        connected = true;
        log.push({ host: h.name, kind: "http", sid: sidOf(req.url), method: req.method });
      }));
      preq.on("error", (e) => {
        if (!connected && e.code === "ECONNREFUSED") {
          tried.add(h.name);
          forward(body, tried);
        } else if (!res.headersSent) {
          res.writeHead(502, { "content-type": "text/plain" });
          res.end(`host ${h.name}: ${e.code || e.message}`);
        } else res.destroy();
      });
      res.on("close", () => {
        if (!res.writableFinished) preq.destroy(); // the client went away
      });
      preq.end(body);
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req, client, head) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    const tried = new Set();
    const attempt = () => {
      const h = next("upgrade", tried);
      if (!h) return client.destroy();
      const up = net.connect(h.port, "127.0.0.1");
      sockets.add(up);
      let connected = false;
      up.once("connect", () => {
        connected = true;
        log.push({ host: h.name, kind: "upgrade", sid: sidOf(req.url) });
        const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        up.write(lines.join("\r\n") + "\r\n\r\n");
        if (head.length) up.write(head);
        client.pipe(up);
        up.pipe(client);
      });
      up.on("error", (e) => {
        if (!connected && e.code === "ECONNREFUSED") {
          tried.add(h.name);
          attempt();
        } else client.destroy();
      });
      up.on("close", () => {
        sockets.delete(up);
        if (connected) client.destroy(); // (a refused host: the next one is tried)
      });
      client.once("close", () => up.destroy());
    };
    attempt();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const b = {
    url,
    path: "/socket.io/",
    log,
    assertAlive() {},
    /** Requests per host, of one session or of all: {A: n, B: n}. */
    counts(sid, kind = "http") {
      const c = Object.fromEntries(hosts.map((h) => [h.name, 0]));
      for (const e of log) if (e.kind === kind && (sid === undefined || e.sid === sid)) c[e.host]++;
      return c;
    },
    async close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
  cleanups.push(["close a balancer", () => b.close()]);
  return b;
}

// ------------------------------------------------------------------ helpers

/** The features plugin's whoami: the pid of the process that ran it. */
async function whoamiPid(socket) {
  const [me] = await emitAck(socket, "whoami", [], 5000);
  return me.pid;
}

/** The stack ("A", "B") whose siogate-fcgi or siogate-wsd has pid. */
function hostOf(pid, stacks) {
  for (const s of stacks) if (s.daemons().some((d) => d.pid === pid)) return s.name;
  return "?";
}

const ms = (x) => `${x.toFixed(1)} ms`;
function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return `n ${s.length}, median ${ms(s[Math.floor(s.length / 2)])}, max ${ms(s[s.length - 1])}`;
}

/** Next "event" on socket whose first argument is `tag`; resolves with the time it came. */
function arrival(socket, event, tag, ms = 10000) {
  let h;
  const p = new Promise((resolve) => {
    h = (x) => {
      if (x === tag || (x && x.tag === tag)) resolve(performance.now());
    };
    socket.on(event, h);
  });
  return withTimeout(p, ms, `"${event}" ${JSON.stringify(tag)} at ${socket.io.engine?.transport?.name} client ${socket.id}`).finally(() => socket.off(event, h));
}

// ------------------------------------------------------------------ tests

let hosts, lb;
before(async () => {
  if (skip) return;
  hosts = await twoHosts("main");
  lb = await startBalancer([hosts.A, hosts.B]);
});

test("polling only, through the round-robin balancer: connect, echoes and acks; the session's requests alternate between both hosts", T, async (t) => {
  const { A, B } = hosts;
  const s = makeClient(lb, "/f", { transports: ["polling"] });
  await whenConnected(s);
  const sid = s.io.engine.id;
  try {
    const pids = [];
    for (let i = 0; i < 12; i++) {
      const echo = new Promise((r) => s.once("echo", (...a) => r(a)));
      s.emit("echo", i, { i });
      assert.deepEqual(await withTimeout(echo, 5000, `echo ${i}`), [i, { i }]);
      pids.push(await whoamiPid(s));
      // another client's request now and then shifts the turn (a session
      // of one GET and one POST at a time would see its POSTs on one host)
      if (i % 3 === 2) assert.equal((await request(`${lb.url}/`)).status < 500, true);
    }
    const byHost = pids.map((p) => hostOf(p, [A, B]));
    const c = lb.counts(sid);
    t.diagnostic(`requests of session ${sid.slice(0, 6)} per host: A ${c.A}, B ${c.B}; whoami answered by ${byHost.join("")}`);
    assert.ok(c.A >= 5 && c.B >= 5, `both hosts served the session: ${JSON.stringify(c)}`);
    assert.ok(byHost.includes("A") && byHost.includes("B"), `the plugin ran on both hosts: ${byHost}`);
    assert.ok(!byHost.includes("?"), `every whoami came from a process of A or B: ${pids}`);
    // consecutive requests of the session alternate (the balancer's own turn)
    const mine = lb.log.filter((e) => e.kind === "http" && e.sid === sid).map((e) => e.host);
    const switches = mine.slice(1).filter((h, i) => h !== mine[i]).length;
    assert.ok(switches >= mine.length / 3, `the session moved between hosts ${switches} times in ${mine.length} requests: ${mine.join("")}`);
  } finally {
    closeClient(s);
  }
});

test("with the upgrade, through the balancer: polling on both hosts, then a WebSocket to one of them; echoes and acks", T, async (t) => {
  const { A, B } = hosts;
  const s = makeClient(lb, "/f", { transports: ["polling", "websocket"] });
  await whenConnected(s);
  const sid = s.io.engine.id;
  try {
    await until(() => s.io.engine.transport.name === "websocket", 10000, "the upgrade to WebSocket");
    const pids = new Set();
    for (let i = 0; i < 10; i++) {
      const echo = new Promise((r) => s.once("echo", (...a) => r(a)));
      s.emit("echo", `ws-${i}`);
      assert.deepEqual(await withTimeout(echo, 5000, `echo ${i}`), [`ws-${i}`]);
      pids.add(await whoamiPid(s));
    }
    const up = lb.log.filter((e) => e.kind === "upgrade" && e.sid === sid);
    assert.equal(up.length, 1, "one upgrade");
    const wsd = [A, B].find((x) => x.name === up[0].host).daemons().find((d) => d.name === "siogate-wsd");
    assert.deepEqual([...pids], [wsd.pid], "every event ran in siogate-wsd of the host that took the upgrade");
    const c = lb.counts(sid);
    t.diagnostic(`session ${sid.slice(0, 6)}: polling requests A ${c.A}, B ${c.B}; WebSocket on ${up[0].host}`);
    assert.ok(c.A + c.B >= 2, "it polled first");
  } finally {
    closeClient(s);
  }
});

test("a room spans both hosts: a broadcast from the plugin on A reaches B's clients, and one from B reaches A's (woken by NOTIFY)", T, async (t) => {
  const { A, B } = hosts;
  const on = async (stack, transport) => {
    const s = makeClient(stack, "/f", { transports: [transport] });
    await whenConnected(s);
    assert.deepEqual((await emitAck(s, "join", ["span"], 5000))[0].includes("span"), true);
    return { s, host: stack.name, transport };
  };
  const clients = [await on(A, "polling"), await on(A, "websocket"), await on(B, "polling"), await on(B, "websocket")];
  const lat = {};
  try {
    for (const [from, to] of [[A, B], [B, A]]) {
      const sender = clients.find((c) => c.host === from.name && c.transport === "polling").s;
      for (let i = 0; i < 10; i++) {
        const tag = `${from.name}-${i}`;
        const got = clients.map((c) => arrival(c.s, "span-news", tag));
        const t0 = performance.now();
        const [n] = await emitAck(sender, "emit-to", [{ event: "span-news", args: [tag], rooms: ["span"] }], 5000);
        assert.equal(typeof n, "number");
        const times = await Promise.all(got);
        clients.forEach((c, k) => {
          if (c.host !== to.name) return;
          (lat[`${from.name} -> ${to.name} ${c.transport}`] ||= []).push(times[k] - t0);
        });
        await sleep(20); // the receivers' polls are held again
      }
    }
    for (const [k, v] of Object.entries(lat)) t.diagnostic(`broadcast from the plugin, ${k}: ${summary(v)}`);
    // the pinned clients never left their host
    for (const c of clients) assert.equal(hostOf(await whoamiPid(c.s), [A, B]), c.host);
  } finally {
    for (const c of clients) closeClient(c.s);
  }
});

test("siogate emit from a third place (its own bell_dir) reaches clients of both hosts and the balancer's", T, async (t) => {
  const { A, B, cliConf } = hosts;
  const clients = [];
  for (const [stack, transport] of [[A, "polling"], [A, "websocket"], [B, "polling"], [B, "websocket"], [lb, "polling"], [lb, "websocket"]]) {
    const s = makeClient(stack, "/f", { transports: transport === "websocket" && stack === lb ? ["polling", "websocket"] : [transport] });
    await whenConnected(s);
    await emitAck(s, "join", ["third"], 5000);
    clients.push({ s, where: stack.name || "balancer", transport });
  }
  try {
    const lat = [];
    for (let i = 0; i < 5; i++) {
      const got = clients.map((c) => arrival(c.s, "cli-news", `cli-${i}`));
      const t0 = performance.now();
      const { stdout } = await execFileP(SIOGATE, ["--conf", cliConf, "emit", "-v", "--nsp", "/f", "--to", "third", "cli-news", JSON.stringify(`cli-${i}`)], { timeout: 15000 });
      assert.equal(stdout.trim(), String(clients.length), "sockets the emit was for");
      for (const x of await Promise.all(got)) lat.push(x - t0);
    }
    t.diagnostic(`siogate emit (a process of its own, start to end) to delivery at 6 clients on A, B and the balancer: ${summary(lat)}`);
  } finally {
    for (const c of clients) closeClient(c.s);
  }
});

// ------------------------------------------------------------------ a host dies

test("one whole host killed (web server, siogate-fcgi, siogate-wsd, each by pid): its clients move to the other and lose no committed packet", T, async (t) => {
  const h = await twoHosts("kill", { recovery_window: 30000 });
  const b = await startBalancer([h.A, h.B]);
  // socket.io clients with recovery, reconnecting at once, through the balancer
  const RECONNECTING = { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 5000 };
  const clients = [];
  for (const transports of [["polling"], ["polling"], ["websocket"], ["websocket"], ["polling", "websocket"], ["polling", "websocket"]]) {
    const s = makeClient(b, "/", { ...RECONNECTING, transports });
    const c = { s, transports: transports.join("+"), n: [], recovered: 0, reconnects: 0, errors: [] };
    s.on("n", (k) => c.n.push(k));
    s.on("connect_error", (e) => c.errors.push(`connect_error ${e.message}`));
    s.on("disconnect", (r) => c.errors.push(`disconnect ${r}`));
    s.io.on("reconnect", () => c.reconnects++);
    s.on("connect", () => {
      if (s.recovered) c.recovered++;
    });
    await whenConnected(s);
    clients.push(c);
  }
  const clientState = (c) => {
    const missing = committed.filter((k) => !c.n.includes(k));
    return `${c.transports} got ${c.n.length} (missing ${missing.slice(0, 5)}${missing.length > 5 ? "..." : ""}), ` +
      `connected ${c.s.connected}, ${c.s.io.engine?.transport?.name}, reconnects ${c.reconnects}, recovered ${c.recovered}, errors ${c.errors.slice(-3)}`;
  };
  await until(() => clients.every((c) => c.s.io.engine.transport.name === (c.transports === "polling" ? "polling" : "websocket")), 10000, "the upgrades");
  const raw = await rawPoller(b, { timeoutMs: 8000 });
  cleanups.push(["stop the raw poller", () => raw.stop()]);
  // where the WebSockets are: the upgrades take turns, so both hosts have some
  const wsOn = b.log.filter((e) => e.kind === "upgrade").map((e) => e.host);
  assert.ok(wsOn.includes("A") && wsOn.includes("B"), `WebSockets on both hosts: ${wsOn}`);

  // the CLI numbers events to everyone on "/"; committed = exit status 0
  const committed = [];
  let failed = 0;
  let running = true;
  const emits = (async () => {
    for (let k = 1; running && k <= 3000; k++) {
      try {
        await execFileP(SIOGATE, ["--conf", h.cliConf, "emit", "n", String(k)], { timeout: 15000 });
        committed.push(k);
      } catch {
        failed++;
      }
      await sleep(10);
    }
  })();
  let killed;
  try {
    await sleep(2500);
    // host A dies: every process of its stack, each by pid, at once
    killed = groupPids(h.A.pid);
    assert.ok(killed.some((p) => p.name === "siogate-fcgi") && killed.some((p) => p.name === "siogate-wsd"), JSON.stringify(killed));
    for (const p of killed) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await sleep(4000);
  } finally {
    running = false;
    await withTimeout(emits, 30000, "the CLI loop to stop");
  }
  t.diagnostic(`killed on A: ${killed.map((p) => `${p.name} ${p.pid}`).join(", ")}`);
  // contrib/stack died with them: its temporary directory is ours to remove
  const tmp = /temp dir (\S+)/.exec(h.A.stderr());
  if (tmp && tmp[1].includes("siogate-stack.")) rmSync(tmp[1], { recursive: true, force: true });
  assert.ok(committed.length >= 10, `the CLI committed ${committed.length} emits (${failed} failed)`);
  // the raw session's events: 42["n",k] (with recovery on, the offset after k)
  const rawN = () => raw.got.filter((x) => x.startsWith('42["n"')).map((x) => JSON.parse(x.slice(2))[1]);
  const last = committed[committed.length - 1];
  await until(() => rawN().includes(last) && clients.every((c) => c.n.length >= committed.length), 30000,
    () => `every committed emit (${committed.length}) everywhere: raw ${rawN().length} (failures ${raw.failures.slice(-5)}), clients ${clients.map(clientState).join("; ")}`);
  await sleep(300); // duplicates would come now
  await raw.stop();
  // the raw session: what a response lost with host A's web server carried
  // (consecutive events, and only if a GET to A failed), nothing else
  const rawGot = rawN();
  const lost = committed.filter((k) => !rawGot.includes(k));
  if (lost.length) {
    t.diagnostic(`the raw session lost ${lost} with host A's web server (failures: ${raw.failures})`);
    // the balancer's 502 "host A: ..." or, when A's answer had begun, a
    // connection broken mid-response (no HTTP status)
    const diedOnA = (f) => f.includes("host A") || !/^\d{3} /.test(f);
    assert.ok(raw.failures.some(diedOnA), `events lost without a GET that died with host A: ${lost}`);
    const at = committed.indexOf(lost[0]);
    assert.deepEqual(lost, committed.slice(at, at + lost.length), "the events lost are one response's: consecutive");
  }
  assert.deepEqual(rawGot, committed.filter((k) => !lost.includes(k)), "the raw session: duplicated or reordered");
  assert.ok(!raw.failures.some((f) => f.startsWith("400")), `the raw session survived: ${raw.failures}`);
  for (const [i, c] of clients.entries()) {
    assert.deepEqual(c.n, committed, `client ${i} (${c.transports}): lost, duplicated or reordered`);
  }
  for (const c of clients) assert.equal(c.s.connected, true, clientState(c));
  // after the kill everything is served by B
  const after = b.log.slice(-20).map((e) => e.host);
  assert.ok(after.every((x) => x === "B"), `the last requests went to B: ${after}`);
  const moved = clients.filter((c) => c.reconnects > 0);
  t.diagnostic(`emits committed ${committed.length}, failed ${failed}; the raw session's failed requests ${raw.failures.length}; ` +
    `clients that reconnected ${moved.length} of ${clients.length} (recovered: ${clients.map((c) => c.recovered).join(" ")})`);
  assert.ok(moved.length >= 1, "some client was on A and moved");
  for (const c of moved) assert.ok(c.recovered >= 1, `a ${c.transports} client that reconnected recovered its session`);
  for (const c of clients) closeClient(c.s);
  h.B.assertAlive();
});
