// docs/postgresql.md, tested: the guide's blocks (each after a
// `<!-- deploy-pg-test: NAME -->` marker, so the guide cannot drift from
// what is tested) applied for real to a throwaway PostgreSQL cluster, two
// stacks as two hosts, and the guide's nginx load balancer in front.
//
//  - setup: the guide's CREATE ROLE / CREATE DATABASE, run with psql on
//    SG_TEST_PG's superuser conninfo instead of `runuser -u postgres`, on a
//    role and database named after this run (so that parallel runs do not
//    clash), with a password of this run instead of change-me;
//  - pg_hba: the guide's line, for this run's role and database from
//    127.0.0.1/32, put first in the cluster's pg_hba.conf (reloaded; the
//    line is removed again at the end): PostgreSQL parses it as the guide
//    says (pg_hba_file_rules), and from then on the role needs its password
//    (the cluster trusts everyone else on loopback);
//  - siogate.conf: the guide's `db =` line, the host and port moved to the
//    cluster's, its plugin line replaced by the echo plugin;
//  - pgpass: the guide's .pgpass line (the cluster's host and port), in a
//    file of mode 0600 given to every process as PGPASSFILE; no password
//    anywhere else (not in the conf, not in PGPASSWORD). Without it, or
//    with it readable by others, `siogate init` is refused; with it, it
//    creates the tables;
//  - two stacks (lib/stack.mjs: web server, siogate-fcgi, siogate-wsd),
//    each with its own bell_dir, on that database, behind the guide's
//    nginx block (no ssl/http2: a free loopback port; its two `server`
//    lines replaced by the stacks): socket.io-client, polling and with the
//    upgrade to WebSocket, gets the echo plugin's acks; the polling
//    session's requests reach both hosts (nginx's $upstream_addr, logged);
//    `siogate emit` with the same conf (a third bell_dir) reaches the
//    client;
//  - the password is in no output of siogate-fcgi, siogate-wsd or siogate
//    (init, emit, and the CLI's error when the server is unreachable, even
//    with the password in the conf's URL), nor in nginx's logs;
//  - the Connections table: the backends of the role while two hosts run
//    fit the guide's budget (6 or 7 a host).
//
// Runs only on PostgreSQL (SG_STORE=pg with SG_TEST_PG: tests/run's
// PostgreSQL pass, or tests/pg-cluster run) with nginx installed; skipped
// otherwise, saying why. (siogate only: skipped with SG_TARGET=reference.)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { BUILDDIR, SRCDIR, IS_REFERENCE, freePort, startStack } from "./lib/stack.mjs";
import { IS_PG, pgAdmin, psqlPath } from "./lib/store.mjs";
import { closeAllClients, closeClient, connectClient, emitAck, nextOn, upgraded } from "./lib/client.mjs";
import { sleep, waitAnswering, waitUntil } from "./lib/util.mjs";

const NGINX = (() => {
  const r = spawnSync("sh", ["-c", 'PATH="$PATH:/usr/sbin:/sbin" command -v nginx'], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
})();
const skip = IS_REFERENCE
  ? "siogate only (the deployment of siogate on PostgreSQL)"
  : !IS_PG
    ? "needs SG_STORE=pg with SG_TEST_PG (a throwaway cluster's superuser): tests/run's PostgreSQL pass, or tests/pg-cluster run"
    : !NGINX
      ? "nginx is not installed (the guide's load balancer; contrib/setup installs it)"
      : false;
const T = { timeout: 90000, skip };
const SIOGATE = join(BUILDDIR, "gateway", "siogate");
const DOC = readFileSync(join(SRCDIR, "docs", "postgresql.md"), "utf8");

// ---------------------------------------------------------------- the guide

/** The fenced block after `<!-- deploy-pg-test: NAME -->` in the guide. */
function docBlock(name) {
  const re = new RegExp(`<!-- deploy-pg-test: ${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} -->\\n\`\`\`[^\\n]*\\n([\\s\\S]*?)\`\`\`\\n`);
  const m = re.exec(DOC);
  assert.ok(m, `docs/postgresql.md has no fenced block after <!-- deploy-pg-test: ${name} -->`);
  return m[1];
}

// ---------------------------------------------------------------- this run's names

const NAME = `sgdoc_${process.pid}_${randomBytes(3).toString("hex")}`; // role and database
const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
let PG; // the cluster: {host, port}
let S; // scratch directory
let CONF; // the guide's siogate.conf, moved
let PGPASS; // the guide's .pgpass, moved
let hbaFile, hbaLines; // the cluster's pg_hba.conf and the lines this run put first in it
let created = { role: false, db: false };
const stacks = [];
const children = new Set();

/** The guide's names (siogate, change-me, db.internal:5432) moved to this run's. */
function moved(text) {
  return text
    .replace(/\bchange-me\b/g, PASSWORD)
    .replace(/\bdb\.internal:5432\b/g, `${PG.host}:${PG.port}`)
    .replace(/@db\.internal\//g, `@${PG.host}:${PG.port}/`)
    .replace(/\bdb\.internal\b/g, PG.host)
    .replace(/(?<![\w.-])siogate(?![\w./-])/g, NAME);
}

/** Environment of every siogate process: the password only through PGPASSFILE. */
function pgEnv(passfile = PGPASS) {
  const env = { ...process.env, SIOGATE_PLUGIN_DIR: join(BUILDDIR, "plugins"), PGPASSFILE: passfile };
  delete env.PGPASSWORD;
  delete env.PGSERVICE;
  return env;
}

/** `siogate --conf FILE ARGS...`: {status, out} (stdout and stderr). */
function cli(conf, args, passfile = PGPASS) {
  const r = spawnSync(SIOGATE, ["--conf", conf, ...args], { encoding: "utf8", env: pgEnv(passfile), timeout: 30000 });
  return { status: r.status, out: `${r.stdout || ""}${r.stderr || ""}`, stdout: r.stdout || "" };
}

const running = (c) => c.exitCode === null && c.signalCode === null;

after(async () => {
  closeAllClients();
  for (const c of children) {
    if (running(c)) {
      const done = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([done, sleep(10000)]);
      if (running(c)) c.kill("SIGKILL");
    }
  }
  for (const s of stacks) await s.stop().catch((e) => process.stderr.write(`# stop a stack: ${e.message}\n`));
  const admin = async (sql) => pgAdmin(sql).catch((e) => process.stderr.write(`# ${sql}: ${e.message}\n`));
  if (created.db) await admin(`DROP DATABASE IF EXISTS ${NAME} WITH (FORCE)`);
  if (created.role) await admin(`DROP ROLE IF EXISTS ${NAME}`);
  if (hbaFile && hbaLines) {
    // only this run's lines go (another run may have put its own meanwhile)
    const text = readFileSync(hbaFile, "utf8").split("\n").filter((l) => !hbaLines.includes(l)).join("\n");
    writeFileSync(hbaFile, text);
    await admin("SELECT pg_reload_conf()");
  }
  if (S && !process.env.SG_KEEP_TMP) rmSync(S, { recursive: true, force: true });
});

before(async () => {
  if (skip) return;
  const u = new URL(process.env.SG_TEST_PG);
  assert.ok(/^postgres(ql)?:$/.test(u.protocol), "SG_TEST_PG is a postgresql:// URL (tests/pg-cluster's)");
  PG = { host: u.hostname, port: u.port || "5432" };
  // the password comes from the .pgpass file only (the stacks inherit this environment)
  delete process.env.PGPASSWORD;
  delete process.env.PGPASSFILE;
  S = mkdtempSync(join(tmpdir(), "sg-dpg-"));
  chmodSync(S, 0o711); // nginx's workers (nobody, when we are root) reach its temp dirs
});

// ---------------------------------------------------------------- the database

test("the guide's CREATE ROLE and CREATE DATABASE, run with psql as the cluster's superuser", T, async () => {
  const block = docBlock("setup");
  const cmds = [...block.matchAll(/^runuser -u postgres -- psql -c "([^"]*)"$/gm)].map((m) => m[1]);
  assert.equal(cmds.length, 2, `the setup block runs two psql commands as postgres:\n${block}`);
  assert.match(cmds[0], /^CREATE ROLE siogate LOGIN PASSWORD 'change-me'$/);
  assert.match(cmds[1], /^CREATE DATABASE siogate OWNER siogate$/);
  for (const sql of cmds) {
    const r = spawnSync(psqlPath(), ["-X", "-v", "ON_ERROR_STOP=1", "-d", process.env.SG_TEST_PG, "-c", moved(sql)], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, `psql -c "${moved(sql).replace(PASSWORD, "***")}": ${r.stderr}`);
    if (/CREATE ROLE/.test(sql)) created.role = true;
    else created.db = true;
  }
  assert.equal(await pgAdmin(`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = '${NAME}'`), "t|f");
  assert.equal(await pgAdmin(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '${NAME}'`), NAME);
  // stored as a SCRAM verifier (PostgreSQL 14's default), as the pg_hba line needs
  assert.match(await pgAdmin(`SELECT rolpassword FROM pg_authid WHERE rolname = '${NAME}'`), /^SCRAM-SHA-256\$/);
});

test("the guide's pg_hba line parses as written, and the role then needs its password", T, async () => {
  assert.ok(created.role && created.db, "the role and database exist (the test before)");
  const line = docBlock("pg_hba").trim();
  const f = line.split(/\s+/);
  assert.deepEqual(f, ["host", "siogate", "siogate", "10.0.0.0/24", "scram-sha-256"], `the guide's pg_hba line: ${line}`);
  // first in the file: the guide's line for this run's role and database,
  // and the same from loopback (the cluster trusts everyone else there)
  const mine = moved(line).replace("10.0.0.0/24", `${PG.host}/32`);
  hbaFile = await pgAdmin("SHOW hba_file");
  assert.ok(existsSync(hbaFile), `the cluster's pg_hba.conf (${hbaFile}) is on this machine`);
  hbaLines = [`# deploy-pg.test.mjs ${NAME} (removed at its end)`, moved(line), mine];
  writeFileSync(hbaFile, `${hbaLines.join("\n")}\n${readFileSync(hbaFile, "utf8")}`);
  const rules = await pgAdmin(
    `SELECT type, database, user_name, address, netmask, auth_method, coalesce(error, '') FROM pg_hba_file_rules WHERE '${NAME}' = ANY(database) ORDER BY line_number`);
  assert.equal(rules, [
    `host|{${NAME}}|{${NAME}}|10.0.0.0|255.255.255.0|scram-sha-256|`,
    `host|{${NAME}}|{${NAME}}|${PG.host}|255.255.255.255|scram-sha-256|`,
  ].join("\n"), "PostgreSQL's reading of the lines");
  assert.equal(await pgAdmin("SELECT pg_reload_conf()"), "t");
  // the reload is the postmaster's, a moment later: until then the role is trusted
  const noPass = join(S, "no-pgpass");
  await waitUntil(
    () => {
      const r = spawnSync(psqlPath(), ["-X", "-w", "-d", `postgresql://${NAME}@${PG.host}:${PG.port}/${NAME}`, "-c", "SELECT 1"],
        { encoding: "utf8", env: pgEnv(noPass), timeout: 10000 });
      return r.status !== 0 && /password/.test(r.stderr);
    },
    15000,
    "the cluster asks this run's role for its password",
  );
});

test("the guide's siogate.conf and .pgpass: siogate init is refused without the password file and with one others can read, and creates the tables with it", T, (t) => {
  assert.ok(hbaLines, "the pg_hba line is in (the test before)");
  const conf = docBlock("siogate.conf");
  assert.match(conf, /^db = postgresql:\/\/siogate@db\.internal\/siogate$/m);
  assert.match(conf, /^plugin = \S+\.so$/m);
  mkdirSync(join(S, "etc"), { recursive: true });
  CONF = join(S, "etc", "siogate.conf");
  const text = moved(conf)
    .replace(/^plugin = .*$/m, `plugin = ${join(BUILDDIR, "plugins", "echo.so")}`);
  assert.ok(!text.includes(PASSWORD), "no password in the configuration");
  // a host of its own keeps its own bell_dir: this file is the CLI's, the third place
  writeFileSync(CONF, `${text}bell_dir = ${join(S, "bells-cli")}\n`);

  const line = docBlock("pgpass").trim();
  assert.equal(line, "db.internal:5432:siogate:siogate:change-me", "the guide's .pgpass line: host:port:database:role:password");
  PGPASS = join(S, "pgpass");
  writeFileSync(PGPASS, `${moved(line)}\n`, { mode: 0o600 });
  chmodSync(PGPASS, 0o600);

  // without the password: refused by the server
  const none = cli(CONF, ["init"], join(S, "no-pgpass"));
  assert.notEqual(none.status, 0, `siogate init without a password: ${none.out}`);
  assert.match(none.out, /password|authentication/i, "it says why");
  t.diagnostic(`without .pgpass: ${none.out.trim()}`);
  // with the file readable by others: libpq ignores it, as the guide says
  chmodSync(PGPASS, 0o644);
  const loose = cli(CONF, ["init"]);
  chmodSync(PGPASS, 0o600);
  assert.notEqual(loose.status, 0, `siogate init with a .pgpass of mode 0644: ${loose.out}`);
  assert.match(loose.out, /password/i);
  t.diagnostic(`.pgpass of mode 0644: ${loose.out.trim()}`);
  // mode 0600: the guide's way
  const ok = cli(CONF, ["init"]);
  assert.equal(ok.status, 0, `siogate init: ${ok.out}`);
  for (const r of [none, loose, ok]) assert.ok(!r.out.includes(PASSWORD), `the password in siogate's output:\n${r.out}`);
  const tables = spawnSync(psqlPath(), ["-X", "-A", "-t", "-d", `postgresql://${NAME}@${PG.host}:${PG.port}/${NAME}`, "-c",
    "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('sessions', 'sockets')"], { encoding: "utf8", env: pgEnv(), timeout: 10000 });
  assert.equal(tables.status, 0, tables.stderr);
  assert.equal(tables.stdout.trim(), "2", "siogate init made the tables, in the role's database");
});

// ---------------------------------------------------------------- two hosts and the balancer

let lb; // {url, path, log}

test("two hosts on that database behind the guide's nginx block; the role's connections fit the guide's budget", T, async (t) => {
  assert.ok(CONF, "the configuration is written (the test before)");
  // each host: the guide's conf (db and plugin), a bell_dir of its own
  const db = /^db = (.*)$/m.exec(readFileSync(CONF, "utf8"))[1];
  for (const name of ["A", "B"]) {
    const s = await startStack({
      fcgi: 1,
      store: { db, conf: { db, bell_dir: join(S, `bells-${name}`) } },
      conf: { ping_interval: 5000, ping_timeout: 5000 },
      env: { PGPASSFILE: PGPASS },
    });
    s.name = name;
    stacks.push(s);
  }

  const block = docBlock("nginx");
  assert.match(block, /^\s*listen 443 ssl http2;$/m);
  const servers = block.match(/^\s*server \S+:\d+;$/gm) || [];
  assert.equal(servers.length, 2, "the guide's upstream has two hosts");
  const port = await freePort();
  let i = 0;
  const conf = block
    .replace(/^(\s*)listen 443 ssl http2;$/m, `$1listen 127.0.0.1:${port};`)
    .replace(/^(\s*)server \S+:\d+;$/gm, (_, sp) => `${sp}server 127.0.0.1:${new URL(stacks[i++].url).port};`);
  for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(S, "nginx", d), { recursive: true, mode: 0o777 });
  for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) chmodSync(join(S, "nginx", d), 0o777);
  const main = join(S, "nginx", "nginx.conf");
  writeFileSync(main, `daemon off;
pid ${S}/nginx/nginx.pid;
error_log ${S}/nginx/error.log warn;
events { worker_connections 256; }
http {
    # (the test's: which host served each request)
    log_format upstream '$upstream_addr $request_method $request_uri $status';
    access_log ${S}/nginx/access.log upstream;
${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((d) => `    ${d}_temp_path ${S}/nginx/${d};`).join("\n")}
    # ---- docs/postgresql.md, deploy-pg-test: nginx
${conf}}
`);
  const check = spawnSync(NGINX, ["-t", "-p", `${S}/nginx/`, "-e", `${S}/nginx/error.log`, "-c", main], { encoding: "utf8", timeout: 15000 });
  assert.equal(check.status, 0, `nginx -t on the guide's block: ${check.stderr}`);
  const c = spawn(NGINX, ["-p", `${S}/nginx/`, "-e", `${S}/nginx/error.log`, "-c", main], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(c);
  c.log = "";
  c.stdout.on("data", (d) => (c.log += d));
  c.stderr.on("data", (d) => (c.log += d));
  const url = `http://127.0.0.1:${port}`;
  await waitAnswering(`${url}/`, 15000, () => {
    if (!running(c)) throw new Error(`nginx exited: ${c.log}`);
  });
  const hostByPort = Object.fromEntries(stacks.map((s) => [`127.0.0.1:${new URL(s.url).port}`, s.name]));
  lb = {
    url,
    path: "/socket.io/",
    assertAlive() {
      if (!running(c)) throw new Error(`nginx exited: ${c.log}`);
      for (const s of stacks) s.assertAlive();
    },
    /** The host of each logged request of session sid, in order. */
    hostsOf(sid) {
      const text = readFileSync(join(S, "nginx", "access.log"), "utf8");
      return text.split("\n").filter((l) => l.includes(`sid=${sid}`)).map((l) => hostByPort[l.split(" ")[0]] || l.split(" ")[0]);
    },
  };

  t.diagnostic(`backends of the role with two hosts up, before any request: ${await backends()}`);
});

/** The role's backends now. */
const backends = async () => Number(await pgAdmin(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${NAME}'`));

test("through the guide's load balancer: polling with acks on both hosts; the upgrade to WebSocket, an ack and a siogate emit", T, async (t) => {
  assert.ok(lb, "the balancer runs (the test before)");
  {
    const { socket, auth } = await connectClient(lb, "/", { transports: ["polling"], auth: { via: "lb" } });
    try {
      assert.deepEqual(await auth, { via: "lb" });
      const sid = socket.io.engine.id;
      for (let i = 0; i < 8; i++) assert.deepEqual(await emitAck(socket, "message-with-ack", ["polling", i]), ["polling", i]);
      assert.equal(socket.io.engine.transport.name, "polling");
      // (a request is logged when it ends)
      await waitUntil(() => new Set(lb.hostsOf(sid)).size === 2, 10000, "requests of the session logged on both hosts");
      const hosts = lb.hostsOf(sid);
      t.diagnostic(`requests of session ${sid.slice(0, 6)} by host, in order: ${hosts.join("")}`);
      assert.ok(hosts.every((h) => h === "A" || h === "B"), `every request went to one of the two stacks: ${hosts}`);
      const switches = hosts.slice(1).filter((h, k) => h !== hosts[k]).length;
      assert.ok(switches >= 3, `consecutive requests of one session went to different hosts: ${hosts.join("")}`);
    } finally {
      closeClient(socket);
    }
  }
  {
    const { socket, auth } = await connectClient(lb, "/", { transports: ["polling", "websocket"], upgrade: true, auth: { up: 1 } });
    try {
      await auth;
      await upgraded(socket, 10000);
      assert.equal(socket.io.engine.transport.name, "websocket");
      assert.deepEqual(await emitAck(socket, "message-with-ack", ["websocket", { n: 3 }]), ["websocket", { n: 3 }]);
      const news = nextOn(socket, "news", 10000);
      const r = cli(CONF, ["-v", "emit", "news", '"through the balancer"']);
      assert.equal(r.status, 0, `siogate emit: ${r.out}`);
      assert.ok(Number(r.stdout.trim()) >= 1, `siogate emit -v: ${r.stdout.trim()} sockets reached`);
      assert.deepEqual(await news, ["through the balancer"]);
      assert.ok(!r.out.includes(PASSWORD), `the password in siogate emit's output: ${r.out}`);
    } finally {
      closeClient(socket);
    }
  }
  lb.assertAlive();
  // the Connections table: 6 or 7 a host with one siogate-fcgi and one
  // siogate-wsd, once they have served and rung (the CLI's are gone once it exited)
  let n;
  await waitUntil(async () => (n = await backends()) <= 2 * 7, 10000, "at most 7 backends a host");
  t.diagnostic(`backends of the role with two hosts up, after the requests and the emit: ${n}`);
  assert.ok(n >= 2 * 3, `each host holds its connections: ${n}`);
});

test("the password is in no output of siogate-fcgi, siogate-wsd or the CLI, even when the server is unreachable", T, async (t) => {
  assert.ok(CONF && stacks.length === 2, "the hosts ran (the tests before)");
  // the server unreachable: a closed port, the password in .pgpass, then in the URL itself
  const closed = await freePort();
  const text = readFileSync(CONF, "utf8");
  const away = join(S, "etc", "away.conf");
  const inUrl = join(S, "etc", "away-url.conf");
  writeFileSync(away, text.replace(`:${PG.port}/`, `:${closed}/`));
  writeFileSync(inUrl, text.replace(`@${PG.host}:${PG.port}/`, `:${PASSWORD}@${PG.host}:${closed}/`));
  writeFileSync(join(S, "pgpass-away"), `${PG.host}:${closed}:${NAME}:${NAME}:${PASSWORD}\n`, { mode: 0o600 });
  for (const [conf, passfile] of [[away, join(S, "pgpass-away")], [inUrl, join(S, "no-pgpass")]]) {
    for (const args of [["emit", "news", "1"], ["init"]]) {
      const r = cli(conf, args, passfile);
      assert.notEqual(r.status, 0, `siogate ${args[0]} with the server unreachable: ${r.out}`);
      assert.ok(r.out.trim() !== "", `siogate ${args[0]} says why it failed`);
      assert.ok(!r.out.includes(PASSWORD), `the password in the CLI's error output:\n${r.out}`);
      assert.match(r.out, new RegExp(String(closed)), `the error names the store by its port: ${r.out}`);
      if (conf === inUrl && args[0] === "emit") t.diagnostic(`unreachable, the password in the URL: ${r.out.trim()}`);
    }
  }
  // the stacks' output: siogate init, siogate-fcgi and siogate-wsd (contrib/stack's stderr), nginx's logs
  for (const s of stacks) {
    const out = s.stderr();
    assert.ok(out.length > 0, `stack ${s.name} printed its children's output`);
    assert.ok(!out.includes(PASSWORD), `the password in stack ${s.name}'s output`);
  }
  for (const f of ["error.log", "access.log"]) assert.ok(!readFileSync(join(S, "nginx", f), "utf8").includes(PASSWORD), `the password in nginx's ${f}`);
});
