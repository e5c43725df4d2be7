// The store the tests' stacks run on: SQLite (default) or PostgreSQL.
//
//   SG_STORE=sqlite (default)  each stack's store is a file in its scratch dir
//   SG_STORE=pg                each stack gets a database of its own, made with
//                              CREATE DATABASE on the server SG_TEST_PG names
//                              (the conninfo of its maintenance database, e.g.
//                              tests/pg-cluster's) and dropped when the stack
//                              stops; its conf gets `db = postgresql://...` and
//                              `bell_dir = <scratch dir>/bells`.
//
//   const s = await newStore(dir);   // s.conf: {db} or {db, bell_dir}
//   await storeQuery(s.db, "SELECT count(*) FROM sessions");  // "3"
//   await s.drop();
//
// storeQuery runs SQL on a store through its own shell (sqlite3 or psql) and
// resolves with its output, trimmed: one line per row, columns separated by
// '|', NULL as the empty string (both shells print so). Write SQL both
// understand; what only one store has (SQLite's WAL file, its locking)
// belongs in a test skipped on the other (sqliteOnly).
//
// SG_TARGET=reference has no store: IS_PG is false there.

import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export const STORE = process.env.SG_STORE || "sqlite";
if (STORE !== "sqlite" && STORE !== "pg") throw new Error(`SG_STORE must be "sqlite" or "pg", not "${STORE}"`);
export const IS_PG = STORE === "pg" && (process.env.SG_TARGET || "siogate") === "siogate";
const MAINT = process.env.SG_TEST_PG || "";
if (IS_PG && !MAINT)
  throw new Error("SG_STORE=pg needs SG_TEST_PG, the conninfo of a PostgreSQL maintenance database (tests/pg-cluster)");

const QUERY_TIMEOUT_MS = 30000;

/** True for a `db` value naming a PostgreSQL server (as sg_store_is_pg). */
export function isPgConninfo(db) {
  return /^(postgresql|postgres):\/\//.test(db) || /^(host|hostaddr|dbname|user|port|service|password)=/.test(db);
}

let psqlBin;
/** psql of the server's version (its bin dir), else the one in $PATH. */
export function psqlPath() {
  if (psqlBin) return psqlBin;
  const dirs = [];
  if (process.env.SG_PG_BINDIR) dirs.push(process.env.SG_PG_BINDIR);
  try {
    dirs.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", timeout: 10000 }).trim());
  } catch {
    /* no pg_config */
  }
  psqlBin = dirs.map((d) => join(d, "psql")).find((p) => existsSync(p)) || "psql";
  return psqlBin;
}

const PSQL_ARGS = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"];

/** conninfo of database `name` on SG_TEST_PG's server. */
export function pgConninfo(name, base = MAINT) {
  if (/^(postgresql|postgres):\/\//.test(base)) {
    const u = new URL(base);
    u.pathname = "/" + name;
    return u.toString();
  }
  return `${base} dbname=${name}`; // keyword/value: the last dbname wins
}

/** Runs SQL on SG_TEST_PG's maintenance database. */
export async function pgAdmin(sql) {
  const { stdout } = await execFileP(psqlPath(), [...PSQL_ARGS, "-d", MAINT, "-c", sql], { timeout: QUERY_TIMEOUT_MS });
  return stdout.trim();
}

// Databases made here and not dropped yet: dropped when the process exits.
const made = new Set();
process.on("exit", () => {
  if (process.env.SG_KEEP_TMP) return;
  for (const name of made) {
    spawnSync(psqlPath(), [...PSQL_ARGS, "-d", MAINT, "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], {
      timeout: 10000,
      stdio: "ignore",
    });
  }
});

let counter = 0;

/**
 * A new, empty store for a stack whose scratch directory is `dir`:
 * {db, conf, drop()}; conf is what goes into its config file.
 */
export async function newStore(dir) {
  if (!IS_PG) {
    const db = join(dir, "siogate.db");
    return { db, conf: { db }, pg: false, drop: async () => {} };
  }
  const name = `sg_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
  await pgAdmin(`CREATE DATABASE ${name}`);
  made.add(name);
  const db = pgConninfo(name);
  return {
    db,
    name,
    pg: true,
    conf: { db, bell_dir: join(dir, "bells") },
    drop: async () => {
      if (!made.has(name)) return;
      if (process.env.SG_KEEP_TMP) {
        process.stderr.write(`# SG_KEEP_TMP: database ${name} kept\n`);
        made.delete(name);
        return;
      }
      await pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      made.delete(name);
    },
  };
}

function shellArgs(db, sql) {
  if (isPgConninfo(db)) return [psqlPath(), [...PSQL_ARGS, "-d", db, "-c", sql]];
  return ["sqlite3", [db, sql]];
}

/** Runs sql on the store `db` (a path or a conninfo); its output, trimmed. */
export async function storeQuery(db, sql, { timeout = QUERY_TIMEOUT_MS } = {}) {
  const [cmd, args] = shellArgs(db, sql);
  const { stdout } = await execFileP(cmd, args, { timeout });
  return stdout.trim();
}

/**
 * storeQuery's synchronous twin, for tests whose clients do not live in
 * this process (it blocks the event loop): {status, stdout, stderr}.
 */
export function storeQuerySync(db, sql, { timeout = QUERY_TIMEOUT_MS } = {}) {
  const [cmd, args] = shellArgs(db, sql);
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout });
  return { status: r.status, stdout: (r.stdout || "").trim(), stderr: r.stderr || "", error: r.error };
}

/**
 * The key of the advisory lock every writer of the PostgreSQL store takes
 * (SG_PG_LOCK in gateway/store_pg.c), read from the source.
 */
function pgLockKey() {
  const src = process.env.SG_SRCDIR || resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const m = /#define SG_PG_LOCK "?(-?\d+)"?/.exec(readFileSync(join(src, "gateway", "store_pg.c"), "utf8"));
  if (!m) throw new Error("SG_PG_LOCK not found in gateway/store_pg.c");
  return m[1];
}

/**
 * Another process takes the store's write lock: sqlite3's own shell in
 * BEGIN IMMEDIATE, or psql holding the PostgreSQL store's writer lock (an
 * advisory lock). Resolves once it is held (within 20 s) with release(),
 * which resolves once that process is gone.
 */
export async function holdWriteLock(db) {
  const pg = isPgConninfo(db);
  const locker = pg ? spawn(psqlPath(), ["-X", "-q", "-A", "-t", "-d", db]) : spawn("sqlite3", [db]);
  const gone = new Promise((r) => locker.once("close", r));
  const release = async () => {
    locker.stdin.end(pg ? "ROLLBACK;\n" : "ROLLBACK;\n.quit\n");
    await gone;
  };
  let said = "";
  locker.stdout.setEncoding("utf8").on("data", (d) => (said += d));
  locker.stdin.write(
    pg
      ? `BEGIN;\nSELECT pg_advisory_xact_lock(${pgLockKey()});\nSELECT 'locked';\n`
      : ".timeout 20000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n",
  );
  const until = Date.now() + 20000;
  while (!said.includes("locked") && locker.exitCode === null && Date.now() < until)
    await new Promise((r) => setTimeout(r, 20));
  if (!said.includes("locked")) {
    await release();
    throw new Error("another process could not take the store's write lock");
  }
  return { release };
}

/**
 * node:test options skipping a test that is about SQLite itself (its file,
 * WAL, locking) when the stacks run on PostgreSQL; `why` is printed.
 */
export function sqliteOnly(why) {
  return IS_PG ? { skip: `SQLite only (SG_STORE=pg): ${why}` } : {};
}
