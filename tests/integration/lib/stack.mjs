// Starts the system under test for one test file and stops it again.
//
//   const stack = await startStack({ fcgi: 1, conf: { ping_interval: 300 } });
//   // conf values that are arrays repeat their key (several plugins):
//   //   conf: { plugin: [pluginPath("echo"), testPluginPath("features")] }
//   // env: extra environment for the stack's processes (plugins read it)
//   stack.url   // base URL, e.g. "http://127.0.0.1:40123" (no trailing slash)
//   stack.path  // Engine.IO path, "/socket.io/" unless conf.path says otherwise
//   stack.db    // its store: the SQLite file, or with SG_STORE=pg the
//               // conninfo of its own PostgreSQL database (lib/store.mjs;
//               // storeQuery(stack.db, sql) reads either)
//   await stack.stop();
//
// SG_TARGET selects what is started:
//   siogate (default)  $SG_SRCDIR/contrib/stack --server lighttpd --port P
//                      --conf FILE --fcgi N (lighttpd + siogate-fcgi + the
//                      echo plugin from $SG_BUILDDIR/plugins/echo.so)
//   reference          reference/server.mjs: the same echo behaviour written
//                      with socket.io 4.8, fed the same conf file; used to
//                      prove that the tests themselves are right.
//
// SG_STORE=pg (with SG_TEST_PG): each stack's store is a fresh PostgreSQL
// database, dropped when it stops (lib/store.mjs says how).
//
// Other environment: SG_SERVER (web server for contrib/stack, default
// lighttpd), SG_KEEP_TMP=1 keeps the temp dirs, SG_STACK_VERBOSE=1 copies
// the stack's stderr to ours. Every process started here is remembered by
// pid and killed when the test process exits, whatever happens.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { newStore } from "./store.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const INTEGRATION_DIR = resolve(here, "..");
export const SRCDIR = process.env.SG_SRCDIR || resolve(INTEGRATION_DIR, "../..");
export const BUILDDIR = process.env.SG_BUILDDIR || SRCDIR;
export const TARGET = process.env.SG_TARGET || "siogate";
export const IS_REFERENCE = TARGET === "reference";
if (TARGET !== "siogate" && TARGET !== "reference")
  throw new Error(`SG_TARGET must be "siogate" or "reference", not "${TARGET}"`);

const READY_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

// Children still running, by pid, so that they are killed if the test
// process goes away without calling stop().
const live = new Map();

function killAll() {
  for (const [pid, group] of live) {
    try {
      process.kill(group ? -pid : pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  live.clear();
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => {
    killAll();
    process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
  });
}

/** Path of an example plugin built in the build tree (plugins/NAME.so). */
export function pluginPath(name) {
  return join(BUILDDIR, "plugins", `${name}.so`);
}

/** Path of a test plugin built by `make check` (tests/plugins/NAME.so). */
export function testPluginPath(name) {
  return join(BUILDDIR, "tests", "plugins", `${name}.so`);
}

/** A free TCP port on 127.0.0.1 (listen on port 0, close, reuse). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

function tmpBase() {
  if (process.env.SG_BUILDDIR) {
    const d = join(process.env.SG_BUILDDIR, "tests", "integration", ".tmp");
    mkdirSync(d, { recursive: true });
    return d;
  }
  return tmpdir();
}

// An array value repeats its key, one line per element, in order (for
// "plugin", which may be given several times).
function confText(conf) {
  return (
    Object.entries(conf)
      .filter(([, v]) => v !== undefined && v !== null)
      .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k} = ${x}`))
      .join("\n") + "\n"
  );
}

function spawnTarget({ port, confFile, fcgi, wsd, restart, env }) {
  if (IS_REFERENCE) {
    return spawn(
      process.execPath,
      [join(INTEGRATION_DIR, "reference", "server.mjs"), "--port", String(port), "--conf", confFile],
      { stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
  }
  const launcher = join(SRCDIR, "contrib", "stack");
  if (!existsSync(launcher)) throw new Error(`stack launcher not found: ${launcher}`);
  const args = ["--server", process.env.SG_SERVER || "lighttpd", "--port", String(port), "--conf", confFile];
  if (fcgi) args.push("--fcgi", String(fcgi));
  if (wsd !== undefined) args.push("--wsd", String(wsd));
  if (restart) args.push("--restart");
  return spawn(launcher, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group: a last-resort kill reaches its children
    env: { ...process.env, ...env, SG_BUILDDIR: BUILDDIR, SG_SRCDIR: SRCDIR },
  });
}

/** Resolves when `child` has exited (or at once if it already has). */
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

async function startOnce({ fcgi, wsd, restart, conf, env, store: given }) {
  const dir = mkdtempSync(join(tmpBase(), "st-"));
  // a store given by the caller (lib/store.mjs's newStore) outlives the stack
  let store = given && { ...given, drop: async () => {} };
  try {
    store = store || (await newStore(dir));
  } catch (e) {
    if (!process.env.SG_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const full = {
    ...store.conf,
    plugin: join(BUILDDIR, "plugins", "echo.so"),
    path: "/socket.io/",
    // SG_BROADCAST_LOG_MIN=0: every broadcast through the broadcast log
    // (tests/run runs one pass so); siogate's key, not the reference's
    ...(process.env.SG_BROADCAST_LOG_MIN !== undefined && !IS_REFERENCE
      ? { broadcast_log_min: process.env.SG_BROADCAST_LOG_MIN }
      : {}),
    ...conf,
  };
  const db = full.db;
  const confFile = join(dir, "siogate.conf");
  writeFileSync(confFile, confText(full));
  const port = await freePort();
  const child = spawnTarget({ port, confFile, fcgi, wsd, restart, env });
  live.set(child.pid, true);

  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024);
    if (process.env.SG_STACK_VERBOSE) process.stderr.write(d);
  });
  child.stdout.setEncoding("utf8");

  const cleanupDir = () => {
    if (!process.env.SG_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };

  const stop = async () => {
    if (live.has(child.pid)) {
      const done = exited(child);
      try {
        child.kill("SIGTERM");
      } catch {
        /* gone */
      }
      let timer;
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise((r) => (timer = setTimeout(() => r(true), STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
        await exited(child);
      }
      live.delete(child.pid);
      // anything left in its process group outlived the launcher: a bug of
      // the launcher, said on stderr, but never left running
      try {
        process.kill(-child.pid, 0);
        process.stderr.write(`warning: ${TARGET} (pid ${child.pid}) left processes behind; killing its group\n`);
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* group empty: clean exit */
      }
    }
    cleanupDir();
    await store.drop();
  };

  let url;
  try {
    url = await new Promise((resolveUrl, reject) => {
      let out = "";
      const timer = setTimeout(
        () => reject(new Error(`${TARGET} did not print its URL within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      const onData = (d) => {
        out += d;
        const nl = out.indexOf("\n");
        if (nl >= 0) {
          const line = out.slice(0, nl).trim();
          clearTimeout(timer);
          child.stdout.off("data", onData);
          child.stdout.resume(); // keep draining whatever else it prints
          if (/^https?:\/\//.test(line)) resolveUrl(line.replace(/\/+$/, ""));
          else reject(new Error(`unexpected first line from ${TARGET}: ${JSON.stringify(line)}`));
        }
      };
      child.stdout.on("data", onData);
      child.once("exit", (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${TARGET} exited (code ${code}, signal ${sig}) before it was ready`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } catch (e) {
    await stop();
    e.message += `\n--- stderr of ${TARGET} (last part) ---\n${stderr.slice(-4000)}`;
    throw e;
  }
  return {
    url,
    path: full.path,
    db,
    /** its doorbell directory: bell_dir, by default the db path + ".bells" */
    bellDir: full.bell_dir || `${db}.bells`,
    store,
    dir,
    conf: full,
    target: TARGET,
    pid: child.pid,
    stderr: () => stderr,
    /** Throws (with the end of its stderr) if the stack has exited. */
    assertAlive() {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `${TARGET} exited unexpectedly (code ${child.exitCode}, signal ${child.signalCode})` +
            `\n--- stderr (last part) ---\n${stderr.slice(-4000)}`,
        );
    },
    /** Its siogate-fcgi and siogate-wsd processes now: [{pid, name}]. */
    daemons: () => daemonsOf(child.pid),
    stop,
  };
}

/** The siogate-fcgi and siogate-wsd processes in process group pgid. */
function daemonsOf(pgid) {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    if (pgrp === pgid && /^siogate-(fcgi|wsd)$/.test(name)) out.push({ pid: Number(d), name });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.pid - b.pid);
}

/**
 * Starts a stack (or the reference server) and waits until it prints its
 * URL. store: a store made with lib/store.mjs's newStore, kept when the
 * stack stops (else the stack makes its own and removes it). If it exits early, retries (twice) with a new port, since a port
 * picked by freePort() may be taken in between.
 */
export async function startStack({ fcgi = 1, wsd, restart = false, conf = {}, env = {}, store } = {}) {
  let last;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce({ fcgi, wsd, restart, conf, env, store });
    } catch (e) {
      last = e;
      // only an early exit may be a lost port race; a hang is not retried
      if (!/exited \(code/.test(e.message)) break;
    }
  }
  throw last;
}

/**
 * For a test file: a function conf => startStack({fcgi: 1, conf}) whose
 * stacks are all stopped by an after() hook registered here (pass
 * node:test's `after`).
 */
export function stacksForFile(after) {
  const stacks = [];
  after(async () => {
    for (const s of stacks) await s.stop();
  });
  return async (conf) => {
    const s = await startStack({ fcgi: 1, conf });
    stacks.push(s);
    return s;
  };
}
