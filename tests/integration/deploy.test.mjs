// docs/deploy.md, tested: the deployment guide's blocks applied to a copy
// of the Debian packages' own configuration of lighttpd, nginx and Apache
// (their /etc directories copied into a scratch prefix: nothing of the
// system's is written), real servers started on a loopback port, and a
// real socket.io-client through each.
//
//  - the guide's configuration blocks are the contrib/SERVER/siogate.conf
//    files without their comments (so the guide cannot drift from them);
//  - siogate-fcgi and siogate-wsd start with the command lines of the
//    generated systemd units (the build tree's programs, the scratch
//    prefix's paths, the units' umask) and the configuration file the
//    guide writes; their sockets are 0666 and the store 0600, as the guide
//    says;
//  - for each server: the guide's `deploy-test: SERVER` block runs as a
//    shell script (cp, sed, lighty-enable-mod, a2enmod, a2enconf, the
//    server's own config test; systemctl is skipped) with every path in
//    it moved under the scratch prefix, HOST=127.0.0.1, and the stock
//    port 80 moved to a free loopback port; the server starts from the
//    result as Debian's service would (user www-data when we are root);
//    a polling client connects, gets its acks and a ping through the
//    held GET, a default client upgrades to WebSocket, gets an ack and a
//    `siogate emit` from the CLI, a WebSocket-only client connects; the
//    server's error log is where the guide's Logs table says.
//
// Runs once (tests/run does not repeat it behind each server); a server
// that is not installed is skipped, saying so. (siogate only: skipped with
// SG_TARGET=reference.)

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync,
  readFileSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { freePort, BUILDDIR, SRCDIR, IS_REFERENCE } from "./lib/stack.mjs";
import { connectClient, closeClient, closeAllClients, emitAck, nextOn, upgraded } from "./lib/client.mjs";
import { withTimeout, sleep, waitAnswering, waitUntil } from "./lib/util.mjs";

const T = { timeout: 90000 };
const SKIP_ALL = IS_REFERENCE ? "siogate only (the deployment of siogate)" : false;
const IS_ROOT = process.getuid && process.getuid() === 0;
const DOC_PATH = join(SRCDIR, "docs", "deploy.md");
const DOC = readFileSync(DOC_PATH, "utf8");

// ---------------------------------------------------------------- the guide

/** The fenced block after the marker `<!-- MARKER -->` in the guide. */
function docBlock(marker) {
  const re = new RegExp(`<!-- ${marker.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} -->\\n\`\`\`[^\\n]*\\n([\\s\\S]*?)\`\`\`\\n`);
  const m = re.exec(DOC);
  assert.ok(m, `docs/deploy.md has no fenced block after <!-- ${marker} -->`);
  return m[1];
}

/** Configuration text without comment lines and blank lines. */
const directives = (text) =>
  text
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^\s*#/.test(l))
    .join("\n");

// ---------------------------------------------------------------- the scratch prefix

const S = mkdtempSync(join(tmpdir(), "sg-deploy-"));
// the web servers' workers (www-data when we are root) walk down to the sockets
chmodSync(S, 0o711);

// Absolute paths the guide and the stock configurations use, moved under
// S. Longest first; a path already under S (preceded by a name character)
// is left alone, so that moving twice changes nothing.
const MOVED = [
  "/usr/share/siogate/", "/var/cache/lighttpd", "/var/lib/siogate", "/var/lib/nginx", "/var/run/",
  "/var/lock/", "/var/log/", "/var/www/", "/etc/lighttpd", "/etc/nginx", "/etc/apache2", "/etc/siogate", "/run/",
];
const MOVED_RE = new RegExp(`(?<![\\w.\\-/])(${MOVED.map((p) => p.replace(/[.\-/]/g, "\\$&")).join("|")})`, "g");
const scratch = (text) => text.replace(MOVED_RE, (p) => S + p);

function mkdirs(...dirs) {
  for (const d of dirs) mkdirSync(join(S, d), { recursive: true, mode: 0o755 });
}
mkdirs("bin", "etc", "run/siogate", "var/www/html", "var/log/lighttpd", "var/log/nginx", "var/log/apache2",
  "var/lib/siogate", "var/cache/lighttpd/uploads", "var/lib/nginx", "var/run/apache2", "var/lock/apache2");
chmodSync(join(S, "var/lib/siogate"), 0o700);
// Debian's postinst makes these the workers' when it installs the package
const WWW = (() => {
  const r = spawnSync("id", ["-u", "www-data"], { encoding: "utf8" });
  if (r.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(spawnSync("id", ["-g", "www-data"], { encoding: "utf8" }).stdout.trim()) };
})();
if (IS_ROOT && WWW) for (const d of ["var/log/lighttpd", "var/cache/lighttpd/uploads", "var/run/apache2", "var/lock/apache2"]) chownSync(join(S, d), WWW.uid, WWW.gid);

// the files `make install` puts in /usr/share/siogate/contrib
for (const s of ["lighttpd", "nginx", "apache"]) {
  mkdirs(`usr/share/siogate/contrib/${s}`);
  copyFileSync(join(SRCDIR, "contrib", s, "siogate.conf"), join(S, `usr/share/siogate/contrib/${s}/siogate.conf`));
}

/** Every regular file under dir (symlinks not followed). */
function* files(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile()) yield p;
  }
}

/** Rewrites every file under dir with f(text, path). */
function rewriteAll(dir, f) {
  for (const p of files(dir)) {
    const before = readFileSync(p, "latin1");
    const after = f(before, p);
    if (after !== before) writeFileSync(p, after, "latin1");
  }
}

/** A copy of /etc/NAME in S/etc/NAME, its absolute symlinks moved too. */
function copyStock(name) {
  const dst = join(S, "etc", name);
  const r = spawnSync("cp", ["-a", `/etc/${name}`, dst], { encoding: "utf8" });
  assert.equal(r.status, 0, `cp -a /etc/${name}: ${r.stderr}`);
  const fix = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isSymbolicLink()) {
        const t = readlinkSync(p);
        if (t.startsWith("/") && scratch(t) !== t) {
          unlinkSync(p);
          symlinkSync(scratch(t), p);
        }
      } else if (e.isDirectory()) fix(p);
    }
  };
  fix(dst);
  return dst;
}

// The server's own command line, run as the guide's commands call it.
const PROGRAMS = { lighttpd: ["lighttpd"], nginx: ["nginx"], apache: ["apache2", "httpd"] };
function program(server) {
  const r = spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin"; for p in ${PROGRAMS[server].join(" ")}; do command -v "$p" && exit 0; done; exit 1`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

// Stand-ins for the Debian helpers the guide calls, working on S/etc.
function writeShims() {
  const shim = (name, body) => {
    writeFileSync(join(S, "bin", name), `#!/bin/sh\nset -e\n${body}\n`);
    chmodSync(join(S, "bin", name), 0o755);
  };
  shim("systemctl", `echo "systemctl $* (skipped: the test starts the server itself)"`);
  // lighty-enable-mod NAME: conf-available/NN-NAME.conf linked into conf-enabled
  shim("lighty-enable-mod", `cd "${S}/etc/lighttpd"
for m in "$@"; do
  found=''
  for f in conf-available/*-"$m".conf; do [ -f "$f" ] && found=$f; done
  [ -n "$found" ] || { echo "lighty-enable-mod: no conf-available/*-$m.conf" >&2; exit 1; }
  ln -sfn "../$found" "conf-enabled/$(basename "$found")"
done`);
  shim("a2enmod", `cd "${S}/etc/apache2"
for m in "$@"; do
  [ -f "mods-available/$m.load" ] || { echo "a2enmod: no module $m" >&2; exit 1; }
  ln -sfn "../mods-available/$m.load" "mods-enabled/$m.load"
  if [ -f "mods-available/$m.conf" ]; then ln -sfn "../mods-available/$m.conf" "mods-enabled/$m.conf"; fi
done`);
  shim("a2enconf", `cd "${S}/etc/apache2"
for c in "$@"; do
  [ -f "conf-available/$c.conf" ] || { echo "a2enconf: no conf-available/$c.conf" >&2; exit 1; }
  ln -sfn "../conf-available/$c.conf" "conf-enabled/$c.conf"
done`);
  const nginx = program("nginx");
  if (nginx) shim("nginx", `exec "${nginx}" -e "${S}/var/log/nginx/error.log" -c "${S}/etc/nginx/nginx.conf" "$@"`);
  const lighttpd = program("lighttpd");
  if (lighttpd) shim("lighttpd", `exec "${lighttpd}" "$@"`);
  const apache = program("apache");
  if (apache)
    shim("apache2ctl", `[ "$1" = configtest ] || { echo "apache2ctl: only configtest here" >&2; exit 1; }
. "${S}/etc/apache2/envvars"
exec "${apache}" -d "${S}/etc/apache2" -t`);
}
writeShims();

// ---------------------------------------------------------------- processes

const started = new Set(); // children, by ChildProcess
after(async () => {
  closeAllClients();
  for (const c of started) await stopChild(c);
  if (!process.env.SG_KEEP_TMP) rmSync(S, { recursive: true, force: true });
  else console.log(`# kept ${S}`);
});

function startChild(argv, opts = {}) {
  const c = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], ...opts });
  c.group = !!opts.detached;
  c.log = "";
  c.stdout.on("data", (d) => (c.log += d));
  c.stderr.on("data", (d) => (c.log += d));
  started.add(c);
  return c;
}

const running = (c) => c.exitCode === null && c.signalCode === null;

/** SIGTERM, then SIGKILL (its process group when detached) after 10 s. */
async function stopChild(c) {
  started.delete(c);
  if (!running(c)) return { code: c.exitCode, signal: c.signalCode };
  const done = new Promise((r) => c.once("exit", (code, signal) => r({ code, signal })));
  c.kill("SIGTERM");
  const late = await Promise.race([done.then(() => false), sleep(10000).then(() => true)]);
  if (late) {
    try {
      process.kill(c.group ? -c.pid : c.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  return done;
}

// ---------------------------------------------------------------- siogate as the units run it

const CONF = join(S, "etc/siogate/siogate.conf");
let siogate = null; // { fcgi, wsd }

/** The Exec lines of a generated unit, as argv arrays. */
function unitExec(name) {
  const path = join(BUILDDIR, "contrib", "systemd", name);
  assert.ok(existsSync(path), `${path} is not generated (make builds it from ${name}.in)`);
  const text = readFileSync(path, "utf8");
  const get = (key) => {
    const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
    assert.ok(m, `${name} has no ${key}=`);
    return m[1].trim().split(/\s+/);
  };
  const umask = /^UMask=(\d+)$/m.exec(text);
  return { pre: get("ExecStartPre"), start: get("ExecStart"), umask: umask ? parseInt(umask[1], 8) : null, text };
}

/** A unit's command line on this machine: the build tree's program, S's paths. */
function local(argv) {
  const prog = basename(argv[0]);
  assert.ok(["siogate", "siogate-fcgi", "siogate-wsd"].includes(prog), `unexpected program ${argv[0]}`);
  const out = [join(BUILDDIR, "gateway", prog)];
  for (let i = 1; i < argv.length; i++) {
    if (argv[i - 1] === "--conf") {
      assert.match(argv[i], /\/siogate\/siogate\.conf$/);
      out.push(CONF);
    } else out.push(scratch(argv[i]));
  }
  return out;
}

test("docs/deploy.md: each web server's configuration block is contrib/SERVER/siogate.conf without its comments", { skip: SKIP_ALL }, () => {
  for (const s of ["lighttpd", "nginx", "apache"]) {
    const file = `contrib/${s}/siogate.conf`;
    assert.equal(directives(docBlock(file)), directives(readFileSync(join(SRCDIR, file), "utf8")), `${file} and its block in docs/deploy.md differ`);
    assert.match(docBlock(`deploy-test: ${s}`), new RegExp(`contrib/${s}/siogate\\.conf`), `the ${s} commands install ${file}`);
  }
});

test("siogate-fcgi and siogate-wsd start as the generated systemd units run them, with the guide's configuration", { skip: SKIP_ALL, ...T }, async () => {
  const m = /cat >\/etc\/siogate\/siogate\.conf <<'END'\n([\s\S]*?)\nEND\n/.exec(DOC);
  assert.ok(m, "docs/deploy.md writes /etc/siogate/siogate.conf with a here-document");
  assert.match(m[1], /^plugin = echo$/m, "the guide's configuration loads the echo plugin by name");
  mkdirs("etc/siogate");
  // the guide's file, plus a short heartbeat so that a ping cycle fits in a test
  writeFileSync(CONF, scratch(m[1]) + "\nping_interval = 3000\nping_timeout = 3000\n");

  const fcgiUnit = unitExec("siogate-fcgi.service");
  const wsdUnit = unitExec("siogate-wsd.service");
  assert.equal(fcgiUnit.umask, 0o077);
  assert.match(fcgiUnit.text, /^RuntimeDirectoryMode=0750$/m);
  assert.match(fcgiUnit.text, /^StateDirectoryMode=0700$/m);
  const env = { ...process.env, SIOGATE_PLUGIN_DIR: join(BUILDDIR, "plugins") };
  const old = process.umask(fcgiUnit.umask);
  try {
    const pre = spawnSync(local(fcgiUnit.pre)[0], local(fcgiUnit.pre).slice(1), { encoding: "utf8", env });
    assert.equal(pre.status, 0, `ExecStartPre: ${pre.stderr}`);
    siogate = { fcgi: startChild(local(fcgiUnit.start), { env }), wsd: startChild(local(wsdUnit.start), { env }) };
  } finally {
    process.umask(old);
  }
  for (const [name, c] of Object.entries(siogate)) {
    await waitUntil(
      () => {
        if (!running(c)) throw new Error(`siogate-${name} exited: ${c.log}`);
        return /info: ready: unix:/.test(c.log);
      },
      15000,
      `siogate-${name} ready`,
    );
    assert.match(c.log, new RegExp(`plugin ${join(BUILDDIR, "plugins")}/echo\\.so loaded`));
  }
  // the permissions of the guide's table
  for (const sock of ["fcgi.sock", "wsd.sock"]) {
    const st = statSync(join(S, "run/siogate", sock));
    assert.ok(st.isSocket(), `${sock} is a socket`);
    assert.equal((st.mode & 0o777).toString(8), "666", `${sock} mode`);
  }
  assert.equal((statSync(join(S, "var/lib/siogate/siogate.db")).mode & 0o777).toString(8), "600", "the store's mode");
});

/** The running siogate pair, or a failed assertion naming the cause. */
function needSiogate() {
  assert.ok(siogate, "siogate did not start (see the test before)");
  for (const [name, c] of Object.entries(siogate)) assert.ok(running(c), `siogate-${name} exited: ${c.log}`);
}

// ---------------------------------------------------------------- the web servers

/** Moves the server's stock listening port 80 to 127.0.0.1:port. */
function movePort(server, text, port) {
  if (server === "lighttpd")
    return text
      .replace(/^server\.port\s*=\s*80\s*$/m, `server.bind = "127.0.0.1"\nserver.port = ${port}`)
      .replace(/^include_shell "\/usr\/share\/lighttpd\/use-ipv6\.pl.*$/m, "# (the IPv6 wildcard listener: not in a test)");
  if (server === "nginx")
    return text.replace(/^([ \t]*)listen[ \t]+\[::\]:80\b[^;]*;[ \t]*$/gm, "").replace(/^([ \t]*)listen[ \t]+80\b/gm, `$1listen 127.0.0.1:${port}`);
  return text.replace(/^([ \t]*)Listen[ \t]+80[ \t]*$/gm, `$1Listen 127.0.0.1:${port}`).replace(/<VirtualHost \*:80>/g, `<VirtualHost *:${port}>`);
}

const ETC = { lighttpd: "lighttpd", nginx: "nginx", apache: "apache2" };
const ERROR_LOG = { lighttpd: "var/log/lighttpd/error.log", nginx: "var/log/nginx/error.log", apache: "var/log/apache2/error.log" };

/** The server's command line, in the foreground, on the scratch copy. */
function serverArgv(server) {
  const bin = program(server);
  if (server === "lighttpd") return [bin, "-D", "-f", join(S, "etc/lighttpd/lighttpd.conf")];
  if (server === "nginx") return [bin, "-e", join(S, ERROR_LOG.nginx), "-c", join(S, "etc/nginx/nginx.conf"), "-g", "daemon off;"];
  // Debian's apache2ctl reads envvars, then starts apache2
  return ["sh", "-c", `. "${S}/etc/apache2/envvars" && exec "${bin}" -d "${S}/etc/apache2" -DFOREGROUND`];
}

/** Resolves with the next ping of the client's engine. */
const nextPing = (socket, ms) => withTimeout(new Promise((r) => socket.io.engine.once("ping", r)), ms, "a ping");

for (const server of ["lighttpd", "nginx", "apache"]) {
  const skip =
    SKIP_ALL ||
    (!program(server) ? `${server} is not installed (contrib/setup installs it)` : false) ||
    (!existsSync(`/etc/${ETC[server]}`) ? `/etc/${ETC[server]} is missing (Debian's ${server} package provides it)` : false);

  test(`${server}: the guide's commands on a copy of Debian's /etc/${ETC[server]}; polling with acks and a ping, upgrade to WebSocket, a siogate emit, WebSocket-only`, { skip, ...T }, async () => {
    needSiogate();
    const etc = copyStock(ETC[server]);
    const port = await freePort();
    // the stock configuration, moved under S
    rewriteAll(etc, (t) => movePort(server, scratch(t), port));
    if (server === "nginx") {
      // nginx's compiled-in temporary directories (/var/lib/nginx/...)
      writeFileSync(join(etc, "conf.d/00-scratch-temp.conf"),
        ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `${t}_temp_path ${S}/var/lib/nginx/${t};`).join("\n") + "\n");
    }

    // the guide's commands, their paths moved under S
    const script = scratch(docBlock(`deploy-test: ${server}`));
    for (const p of script.match(/(?<![\w.\-/])\/(etc|var|run|lib|srv|home|root)\/\S*/g) || [])
      assert.fail(`the ${server} commands name ${p}, which this test does not move under its scratch prefix`);
    const run = spawnSync("sh", ["-e", "-x", "-c", script], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${S}/bin:${process.env.PATH}:/usr/sbin:/sbin`, HOST: "127.0.0.1" },
      timeout: 30000,
    });
    assert.equal(run.status, 0, `the guide's ${server} commands failed:\n${run.stdout}${run.stderr}`);
    // what they installed: its /run/siogate, /var/www and port 80 moved too
    rewriteAll(etc, (t) => movePort(server, scratch(t), port));

    const child = startChild(serverArgv(server), { detached: true });
    const url = `http://127.0.0.1:${port}`;
    const front = {
      url,
      path: "/socket.io/",
      assertAlive() {
        if (!running(child)) throw new Error(`${server} exited: ${child.log}`);
        needSiogate();
      },
    };
    try {
      await waitAnswering(`${url}/`, 15000, () => front.assertAlive());

      // polling: connect, acks, a ping through the held GET
      {
        const { socket, auth } = await connectClient(front, "/", { transports: ["polling"], auth: { via: server } });
        try {
          assert.deepEqual(await auth, { via: server });
          assert.deepEqual(await emitAck(socket, "message-with-ack", ["polling", 1]), ["polling", 1]);
          await nextPing(socket, 8000);
          assert.deepEqual(await emitAck(socket, "message-with-ack", ["after a ping", 2]), ["after a ping", 2]);
          assert.equal(socket.io.engine.transport.name, "polling");
        } finally {
          closeClient(socket);
        }
      }
      // the default client: polling, then the upgrade; an ack and the CLI's emit over the WebSocket
      {
        const { socket, auth } = await connectClient(front, "/", { transports: ["polling", "websocket"], upgrade: true, auth: { up: 1 } });
        try {
          await auth;
          await upgraded(socket);
          assert.equal(socket.io.engine.transport.name, "websocket");
          assert.deepEqual(await emitAck(socket, "message-with-ack", ["websocket", { n: 3 }]), ["websocket", { n: 3 }]);
          const news = nextOn(socket, "news", 8000);
          const cli = spawnSync(join(BUILDDIR, "gateway", "siogate"), ["--conf", CONF, "-v", "emit", "news", `"through ${server}"`], {
            encoding: "utf8",
            env: { ...process.env, SIOGATE_PLUGIN_DIR: join(BUILDDIR, "plugins") },
            timeout: 15000,
          });
          assert.equal(cli.status, 0, `siogate emit: ${cli.stderr}`);
          // (the polling client before may not be gone yet: at least this one)
          assert.ok(Number(cli.stdout.trim()) >= 1, `siogate emit -v: ${cli.stdout.trim()} sockets reached`);
          assert.deepEqual(await news, [`through ${server}`]);
        } finally {
          closeClient(socket);
        }
      }
      // WebSocket only
      {
        const { socket, auth } = await connectClient(front, "/", { transports: ["websocket"], auth: { ws: 1 } });
        try {
          assert.deepEqual(await auth, { ws: 1 });
          assert.equal(socket.io.engine.transport.name, "websocket");
          assert.deepEqual(await emitAck(socket, "message-with-ack", ["ws only"]), ["ws only"]);
        } finally {
          closeClient(socket);
        }
      }
      // the log where the guide's table says (moved under S)
      assert.ok(existsSync(join(S, ERROR_LOG[server])), `no ${ERROR_LOG[server]}`);
    } catch (e) {
      let errlog = "";
      try {
        errlog = readFileSync(join(S, ERROR_LOG[server]), "utf8").slice(-3000);
      } catch {
        /* none */
      }
      e.message += `\n--- ${server} output:\n${child.log.slice(-2000)}\n--- its error log:\n${errlog}\n--- siogate:\n${
        siogate ? (siogate.fcgi.log + siogate.wsd.log).slice(-2000) : ""}`;
      throw e;
    } finally {
      closeAllClients();
      await stopChild(child);
    }
  });
}

test("siogate-fcgi and siogate-wsd stop on SIGTERM with status 0", { skip: SKIP_ALL, ...T }, async () => {
  needSiogate();
  const [f, w] = await Promise.all([stopChild(siogate.fcgi), stopChild(siogate.wsd)]);
  assert.deepEqual(f, { code: 0, signal: null }, siogate.fcgi.log);
  assert.deepEqual(w, { code: 0, signal: null }, siogate.wsd.log);
  siogate = null;
});
