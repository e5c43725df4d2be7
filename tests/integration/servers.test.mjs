// Every web server in turn: contrib/stack with lighttpd, nginx and Apache
// (SG_SERVERS="lighttpd nginx apache" by default; one that is not
// installed is skipped, saying so), each with two siogate-fcgi processes
// and siogate-wsd when it is built. Through each of them:
//  - a polling client connects, echoes text and binary, gets an ack, and
//    its session survives a ping cycle (held GETs answered by the ping);
//  - when siogate-wsd is built: a WebSocket-only client does the same (the
//    server routes "Upgrade: websocket" on the path to siogate-wsd), and a
//    client with the default transports upgrades from polling and echoes
//    over the WebSocket;
//  - the documented configuration, contrib/SERVER/siogate.conf, run by the
//    same server (its /run/siogate sockets pointed at the stack's
//    processes, its port at a free one), serves the same clients;
//  - SIGTERM stops the stack cleanly: exit 0, nothing left in its process
//    group, its temporary directory removed.
// The rest of the suite runs against one server, SG_SERVER (lighttpd by
// default); this file is the one that runs all of them.
// (siogate only: skipped with SG_TARGET=reference.)

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startStack, freePort, BUILDDIR, SRCDIR, IS_REFERENCE } from "./lib/stack.mjs";
import { connectClient, closeClient, closeAllClients, emitAck, nextOn, upgraded } from "./lib/client.mjs";
import { withTimeout, sleep, toBuffer, waitAnswering } from "./lib/util.mjs";

const T = { timeout: 60000 };
// short heartbeat, so that a ping cycle fits in a test
const CONF = { ping_interval: 3000, ping_timeout: 3000 };
const HAVE_WSD = existsSync(join(BUILDDIR, "gateway", "siogate-wsd"));

const SERVERS = (process.env.SG_SERVERS || "lighttpd nginx apache").split(/[\s,]+/).filter(Boolean);

// The program contrib/stack runs for each server.
const PROGRAMS = { lighttpd: ["lighttpd"], nginx: ["nginx"], apache: ["apache2", "httpd"] };
/** The path of the server's program, or null when it is not installed. */
function program(server) {
  const names = PROGRAMS[server] || [server];
  const r = spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin"; for p in ${names.join(" ")}; do command -v "$p" && exit 0; done; exit 1`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}
const installed = (server) => program(server) !== null;
const IS_ROOT = process.getuid && process.getuid() === 0;

const running = new Set();
after(async () => {
  closeAllClients();
  for (const s of running) await s.stop();
});

/** contrib/stack with `server` (lib/stack.mjs reads SG_SERVER at spawn). */
async function startWith(server) {
  const saved = process.env.SG_SERVER;
  process.env.SG_SERVER = server;
  try {
    const s = await startStack({ fcgi: 2, conf: CONF });
    running.add(s);
    return s;
  } finally {
    if (saved === undefined) delete process.env.SG_SERVER;
    else process.env.SG_SERVER = saved;
  }
}

/** Resolves at the next ping the client's engine receives. */
function nextPing(socket, ms) {
  return withTimeout(new Promise((r) => socket.io.engine.once("ping", r)), ms, "a ping");
}

/** Echo of text + binary, then an ack: what the echo plugin answers. */
async function echo(socket, label) {
  const back = nextOn(socket, "message-back", 5000);
  socket.emit("message", label, Buffer.from([1, 2, 3, 254]));
  const [txt, bin] = await back;
  assert.equal(txt, label);
  assert.deepEqual(toBuffer(bin), Buffer.from([1, 2, 3, 254]));
  assert.deepEqual(await emitAck(socket, "message-with-ack", [label, { n: 1 }]), [label, { n: 1 }]);
}

/** A client through the stack: connect, echo, a ping cycle, echo again. */
async function roundTrip(stack, opts, transport, label) {
  const { socket, auth } = await connectClient(stack, "/", { ...opts, auth: { label } });
  try {
    assert.deepEqual(await auth, { label });
    if (transport === "websocket") await upgraded(socket);
    assert.equal(socket.io.engine.transport.name, transport);
    await echo(socket, `${label} 1`);
    // the server pings every 3 s: over polling the ping answers the held
    // GET, which the web server must pass on at once (no buffering)
    await nextPing(socket, 8000);
    await echo(socket, `${label} 2`);
    assert.ok(socket.connected);
    assert.equal(socket.io.engine.transport.name, transport);
  } finally {
    closeClient(socket);
  }
}

/** Resolves with the stack's exit code once it has exited. */
async function exitCode(stack, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      stack.assertAlive();
    } catch (e) {
      const m = /exited unexpectedly \(code (\w+), signal (\w+)\)/.exec(e.message);
      return m ? (m[1] === "null" ? `signal ${m[2]}` : Number(m[1])) : e.message;
    }
    if (Date.now() > deadline) throw new Error(`the stack did not exit within ${ms} ms of SIGTERM`);
    await sleep(50);
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the documented configurations

/** A user Apache may run its children as (when we are root). */
function apacheUser() {
  for (const u of ["www-data", "apache", "daemon", "nobody"]) {
    const r = spawnSync("id", ["-u", u], { encoding: "utf8" });
    if (r.status === 0) {
      const g = spawnSync("id", ["-gn", u], { encoding: "utf8" }).stdout.trim();
      return { user: u, group: g, uid: Number(r.stdout.trim()) };
    }
  }
  throw new Error("no unprivileged user for Apache");
}

function apacheModuleDir() {
  for (const d of ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules", "/usr/libexec/apache2", "/usr/local/apache2/modules"])
    if (existsSync(join(d, "mod_proxy.so"))) return d;
  throw new Error("cannot find Apache's modules");
}

/**
 * Writes a minimal main configuration for `server` around the documented
 * file (as a distribution's would include it) into `dir`; returns the
 * command line that runs the server in the foreground.
 */
function documentedServer(server, dir, port) {
  const bin = program(server);
  let doc = readFileSync(join(SRCDIR, "contrib", server, "siogate.conf"), "utf8")
    .replaceAll("/run/siogate/", `${dir}/`)
    .replaceAll("/var/www/html", `${dir}/www`);
  mkdirSync(join(dir, "www"));
  chmodSync(join(dir, "www"), 0o755);
  if (server === "lighttpd") {
    writeFileSync(join(dir, "siogate.conf"), doc);
    writeFileSync(
      join(dir, "main.conf"),
      [
        `server.document-root = "${dir}/www"`,
        `server.bind = "127.0.0.1"`,
        `server.port = ${port}`,
        `server.errorlog = "${dir}/error.log"`,
        `include "${dir}/siogate.conf"`,
      ].join("\n") + "\n",
    );
    return [bin, "-D", "-f", join(dir, "main.conf")];
  }
  if (server === "nginx") {
    assert.match(doc, /listen 80;/);
    doc = doc.replace(/listen 80;/, `listen 127.0.0.1:${port};`);
    writeFileSync(join(dir, "siogate.conf"), doc);
    // `include fastcgi_params` is relative to the configuration's directory
    const confPath = /--conf-path=(\S+)/.exec(spawnSync(bin, ["-V"], { encoding: "utf8" }).stderr);
    copyFileSync(join(dirname(confPath ? confPath[1] : "/etc/nginx/nginx.conf"), "fastcgi_params"), join(dir, "fastcgi_params"));
    mkdirSync(join(dir, "temp"));
    writeFileSync(
      join(dir, "nginx.conf"),
      [
        "daemon off;",
        "worker_processes 1;",
        IS_ROOT ? "user root root;" : "",
        `pid ${dir}/nginx.pid;`,
        `error_log ${dir}/error.log warn;`,
        "events { worker_connections 1024; }",
        "http {",
        "    access_log off;",
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `    ${t}_temp_path ${dir}/temp/${t};`),
        `    include ${dir}/siogate.conf;`,
        "}",
      ].join("\n") + "\n",
    );
    return [bin, "-p", `${dir}/`, "-c", join(dir, "nginx.conf")];
  }
  // apache
  assert.match(doc, /<VirtualHost \*:80>/);
  doc = doc.replace(/<VirtualHost \*:80>/, `<VirtualHost *:${port}>`);
  writeFileSync(join(dir, "siogate.conf"), doc);
  const builtin = spawnSync(bin, ["-l"], { encoding: "utf8" }).stdout || "";
  const moddir = apacheModuleDir();
  const mods = ["mpm_event", "unixd", "authz_core", "rewrite", "proxy", "proxy_fcgi", "proxy_http", "proxy_wstunnel"]
    .filter((m) => !builtin.includes(`mod_${m}.c`))
    .map((m) => `LoadModule ${m}_module ${moddir}/mod_${m}.so`);
  mkdirSync(join(dir, "run"));
  const lines = [`ServerRoot ${dir}`, ...mods, `Listen 127.0.0.1:${port}`, "ServerName 127.0.0.1"];
  if (IS_ROOT) {
    const u = apacheUser();
    chownSync(join(dir, "run"), u.uid, -1);
    lines.push(`User ${u.user}`, `Group ${u.group}`);
  }
  lines.push(`PidFile ${dir}/httpd.pid`, `ErrorLog ${dir}/error.log`, `DefaultRuntimeDir ${dir}/run`, `Include ${dir}/siogate.conf`);
  writeFileSync(join(dir, "httpd.conf"), lines.join("\n") + "\n");
  return [bin, "-DFOREGROUND", "-f", join(dir, "httpd.conf")];
}

/** Resolves once `url` answers at all (any status). */
function answers(url, child, ms) {
  return waitAnswering(url, ms, () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("the server exited");
  });
}

/** Stops a server started with detached: true (its own process group). */
async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const late = await Promise.race([done.then(() => false), sleep(10000).then(() => true)]);
  if (late) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
    await done;
  }
}

for (const server of SERVERS) {
  const skip = IS_REFERENCE
    ? "siogate only (web servers in front of siogate)"
    : !installed(server)
      ? `${server} is not installed (contrib/setup installs it)`
      : false;
  const wsSkip = skip || (HAVE_WSD ? false : "siogate-wsd is not built");
  let stack = null;
  const need = () => {
    assert.ok(stack, `the ${server} stack did not start (see the first test of ${server})`);
    stack.assertAlive();
    return stack;
  };

  test(`${server}: contrib/stack starts (2 siogate-fcgi${HAVE_WSD ? ", siogate-wsd" : ""})`, { skip, ...T }, async () => {
    stack = await startWith(server);
    assert.match(stack.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    if (HAVE_WSD) assert.match(stack.stderr(), /siogate-wsd\[\d+\]: info: ready: unix:/);
  });

  test(`${server}: polling client: connect, echo text and binary, ack, a ping cycle`, { skip, ...T }, async () => {
    await roundTrip(need(), { transports: ["polling"] }, "polling", `${server} polling`);
  });

  test(`${server}: several polling clients at once over both fcgi processes`, { skip, ...T }, async () => {
    const s = need();
    const conns = await Promise.all(
      Array.from({ length: 8 }, (_, c) => connectClient(s, "/", { auth: { c } })),
    );
    try {
      await Promise.all(
        conns.map(async ({ socket, auth }, c) => {
          assert.deepEqual(await auth, { c });
          for (let i = 0; i < 5; i++) await echo(socket, `${server} c${c} #${i}`);
        }),
      );
    } finally {
      conns.forEach(({ socket }) => closeClient(socket));
    }
  });

  test(`${server}: WebSocket-only client: connect, echo text and binary, ack, a ping cycle`, { skip: wsSkip, ...T }, async () => {
    await roundTrip(need(), { transports: ["websocket"] }, "websocket", `${server} websocket`);
  });

  test(`${server}: default client upgrades from polling to WebSocket and echoes`, { skip: wsSkip, ...T }, async () => {
    await roundTrip(need(), { transports: ["polling", "websocket"], upgrade: true }, "websocket", `${server} upgrade`);
  });

  test(`${server}: the documented contrib/${server}/siogate.conf serves polling${HAVE_WSD ? " and WebSocket" : ""} clients`, { skip, ...T }, async () => {
    const s = need();
    const stackTmp = (/stack: temp dir (\S+)/.exec(s.stderr()) || [])[1];
    assert.ok(stackTmp, "the stack named its temp dir on stderr");
    const dir = mkdtempSync(join(tmpdir(), "sg-doc-"));
    chmodSync(dir, 0o711); // Apache's children (www-data when we are root) reach the sockets
    let child = null;
    let log = "";
    try {
      symlinkSync(join(stackTmp, "fcgi-1.sock"), join(dir, "fcgi.sock"));
      if (HAVE_WSD) symlinkSync(join(stackTmp, "wsd-1.sock"), join(dir, "wsd.sock"));
      const port = await freePort();
      const argv = documentedServer(server, dir, port);
      child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], detached: true });
      child.stdout.on("data", (d) => (log += d));
      child.stderr.on("data", (d) => (log += d));
      const url = `http://127.0.0.1:${port}`;
      const front = {
        url,
        path: "/socket.io/",
        assertAlive() {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${server} exited: ${log}`);
          s.assertAlive();
        },
      };
      await answers(`${url}/`, child, 15000);
      await roundTrip(front, { transports: ["polling"] }, "polling", `${server} documented polling`);
      if (HAVE_WSD) {
        await roundTrip(front, { transports: ["websocket"] }, "websocket", `${server} documented websocket`);
        await roundTrip(front, { transports: ["polling", "websocket"], upgrade: true }, "websocket", `${server} documented upgrade`);
      }
    } catch (e) {
      let errlog = "";
      try {
        errlog = readFileSync(join(dir, "error.log"), "utf8").slice(-3000);
      } catch {
        /* none */
      }
      e.message += `\n--- ${server} output:\n${log.slice(-2000)}\n--- its error log:\n${errlog}`;
      throw e;
    } finally {
      closeAllClients();
      if (child) await stopServer(child);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${server}: SIGTERM stops the stack cleanly`, { skip, ...T }, async () => {
    const s = need();
    closeAllClients();
    const tmp = (/stack: temp dir (\S+)/.exec(s.stderr()) || [])[1];
    assert.ok(tmp, "the stack named its temp dir on stderr");
    assert.ok(existsSync(tmp));
    process.kill(s.pid, "SIGTERM");
    assert.equal(await exitCode(s, 15000), 0);
    // nothing it started outlives it
    const deadline = Date.now() + 2000;
    while (groupAlive(s.pid) && Date.now() < deadline) await sleep(50);
    assert.equal(groupAlive(s.pid), false, "processes left in the stack's process group");
    assert.equal(existsSync(tmp), false, `${tmp} not removed`);
    running.delete(s);
    stack = null;
    await s.stop();
  });
}
