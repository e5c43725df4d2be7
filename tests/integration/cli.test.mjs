// The gateway CLI (`siogate`, docs/siogate.1) against the real stack, with
// real socket.io-client polling clients: emit (rooms, --except, --socket,
// --bin, --args-stdin, --ack, --volatile), sockets/rooms/stats (plain and
// JSON, parsed by jq), join/leave, disconnect, gc (with the servers running
// and stopped), check, a concurrent writer load, and a locked store.
// Usage errors, which need no stack, are tests/cli/usage.sh.
//
// The CLI is $SG_BUILDDIR/gateway/siogate, given the conf file the stack
// runs with (startStack writes it as <stack.dir>/siogate.conf).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDDIR, pluginPath, startStack } from "./lib/stack.mjs";
import { closeClient, closeAllClients, connectClient, nextOn } from "./lib/client.mjs";
import { SKIP_REFERENCE as skip, startFeaturesStack, connectF, observer } from "./lib/features.mjs";
import { handshake, send } from "./lib/eio.mjs";
import { collectEvents, sleep, toBuffer, withTimeout } from "./lib/util.mjs";
import { IS_PG, holdWriteLock, newStore } from "./lib/store.mjs";

const T = { timeout: 120000, skip };
const SIOGATE = join(BUILDDIR, "gateway", "siogate");

let stack, conf, work;
before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), "sg-cli-"));
  stack = await startFeaturesStack({ fcgi: 2 });
  conf = join(stack.dir, "siogate.conf");
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Runs siogate with args (after --conf); resolves with {code, out, err}.
 * opts.input: written to its stdin; opts.conf: another conf file; opts.sh:
 * a shell command line instead ($SIOGATE and $CONF are set).
 */
function cli(args, opts = {}) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, SIOGATE: SIOGATE, CONF: opts.conf || conf };
    delete env.SIOGATE_CONF;
    const p = opts.sh
      ? spawn("/bin/sh", ["-c", opts.sh], { env })
      : spawn(SIOGATE, ["--conf", opts.conf || conf, ...args], { env });
    let out = "",
      err = "";
    p.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, out, err }));
    p.stdin.on("error", () => {});
    p.stdin.end(opts.input);
  });
}
const sh = (line, opts = {}) => cli([], { ...opts, sh: line });

/** Runs siogate and asserts exit 0 and an empty stderr; resolves with stdout. */
async function ok(args, opts) {
  const r = await cli(args, opts);
  assert.equal(r.code, 0, `siogate ${args.join(" ")}: exit ${r.code}, stderr: ${r.err}`);
  assert.equal(r.err, "", `siogate ${args.join(" ")}: stderr`);
  return r.out;
}

/** n clients on nsp ("/" is the echo application, "/f" the features plugin). */
async function clients(n, nsp = "/") {
  return Promise.all(
    Array.from({ length: n }, () =>
      nsp === "/f" ? connectF(stack, nsp).then((c) => c.socket) : connectClient(stack, nsp).then((c) => c.socket),
    ),
  );
}

const joinArgs = (sockets) => sockets.flatMap((s) => ["--socket", s.id]);
const closeAll = (list) => list.forEach(closeClient);

/** Records every `event` on each socket; stop() returns the lists. */
function record(sockets, event) {
  const got = sockets.map(() => []);
  const hs = sockets.map((s, i) => {
    const h = (...a) => got[i].push(a);
    s.on(event, h);
    return h;
  });
  return {
    got,
    async until(pred, ms = 5000) {
      const end = Date.now() + ms;
      while (Date.now() < end && !pred(got)) await sleep(10);
    },
    stop() {
      sockets.forEach((s, i) => s.off(event, hs[i]));
      return got;
    },
  };
}

// ---- emit -------------------------------------------------------------------------------

test("emit reaches 100 polling clients in a room, and no one else", T, async () => {
  const members = await clients(100);
  const others = await clients(3);
  try {
    assert.equal(await ok(["join", "--verbose", ...joinArgs(members), "hundred"]), "100\n");
    const rec = record([...members, ...others], "news");
    const out = await ok(["emit", "--verbose", "--to", "hundred", "news", '"today"', "42", '{"k":[1,null]}']);
    assert.equal(out, "100\n", "the number of sockets reached");
    await rec.until((g) => g.slice(0, 100).every((x) => x.length >= 1));
    await sleep(300);
    const got = rec.stop();
    got.slice(0, 100).forEach((g, i) => assert.deepEqual(g, [["today", 42, { k: [1, null] }]], `member ${i}`));
    got.slice(100).forEach((g, i) => assert.deepEqual(g, [], `non-member ${i}`));
  } finally {
    closeAll([...members, ...others]);
  }
});

test("emit without --to reaches the whole namespace; --nsp picks another", T, async () => {
  const root = await clients(2);
  const custom = await clients(2, "/custom");
  try {
    const rec = record([...root, ...custom], "all");
    assert.equal(await ok(["emit", "-v", "all", "1"]), `${(await ok(["sockets", "--nsp", "/"])).split("\n").length - 1}\n`);
    assert.equal(await ok(["emit", "-v", "--nsp", "/custom", "all", "2"]), "2\n");
    await rec.until((g) => g.every((x) => x.length >= 1));
    await sleep(200);
    const got = rec.stop();
    assert.deepEqual(got, [[[1]], [[1]], [[2]], [[2]]]);
  } finally {
    closeAll([...root, ...custom]);
  }
});

test("emit --except skips the members of a room", T, async () => {
  const s = await clients(4);
  try {
    await ok(["join", ...joinArgs(s), "team"]);
    await ok(["join", "--socket", s[1].id, "--socket", s[2].id, "muted"]);
    const rec = record(s, "ping-team");
    assert.equal(await ok(["emit", "-v", "--to", "team", "--except", "muted", "ping-team"]), "2\n");
    assert.equal(await ok(["emit", "-v", "--to", "team", "--except", s[0].id, "--except", s[3].id, "ping-team", "2"]), "2\n");
    await rec.until((g) => g.every((x) => x.length >= 1));
    await sleep(300);
    assert.deepEqual(rec.stop(), [[[]], [[2]], [[2]], [[]]]);
  } finally {
    closeAll(s);
  }
});

test("emit --socket reaches that socket; its namespace is found without --nsp", T, async () => {
  const [a, b] = await clients(2);
  const [c] = await clients(1, "/custom");
  try {
    const rec = record([a, b, c], "direct");
    assert.equal(await ok(["emit", "-v", "--socket", b.id, "direct", '"b"']), "1\n");
    assert.equal(await ok(["emit", "-v", "--socket", c.id, "direct", '"c"']), "1\n", "in /custom");
    assert.equal(await ok(["emit", "-v", "--socket", a.id, "--socket", b.id, "direct", '"ab"']), "2\n");
    assert.equal(await ok(["emit", "-v", "--socket", "NoSuchSocketId000000", "direct"]), "0\n");
    assert.equal(await ok(["emit", "-v", "--nsp", "/custom", "--socket", a.id, "direct"]), "0\n", "a is not in /custom");
    const mixed = await cli(["emit", "--socket", a.id, "--socket", c.id, "direct"]);
    assert.equal(mixed.code, 1);
    assert.match(mixed.err, /^siogate emit: the sockets are in different namespaces .*--nsp\n$/);
    await rec.until((g) => g[0].length >= 1 && g[1].length >= 2 && g[2].length >= 1);
    await sleep(300);
    assert.deepEqual(rec.stop(), [[["ab"]], [["b"], ["ab"]], [["c"]]]);
  } finally {
    closeAll([a, b, c]);
  }
});

test("emit --bin sends a file's bytes as a binary argument", T, async () => {
  const [s] = await clients(1);
  try {
    const bytes = randomBytes(70000);
    bytes[0] = 0;
    bytes[1] = 0x1e; // the polling record separator, inside binary data
    const small = Buffer.from([0xff, 0x00, 0x0a]);
    writeFileSync(join(work, "big.bin"), bytes);
    writeFileSync(join(work, "small.bin"), small);
    writeFileSync(join(work, "empty.bin"), Buffer.alloc(0));
    const got = nextOn(s, "file", 10000);
    await ok([
      "emit", "--socket", s.id, "--bin", join(work, "big.bin"), "--bin", join(work, "small.bin"),
      "--bin", join(work, "empty.bin"), "file", '{"name":"big.bin"}',
    ]);
    const [meta, b1, b2, b3] = await got;
    assert.deepEqual(meta, { name: "big.bin" });
    assert.ok(toBuffer(b1).equals(bytes), "70000 random bytes");
    assert.ok(toBuffer(b2).equals(small));
    assert.equal(toBuffer(b3).length, 0);
    // from standard input
    const again = nextOn(s, "stdin-file", 5000);
    await ok(["emit", "--socket", s.id, "--bin", "-", "stdin-file"], { input: small });
    assert.ok(toBuffer((await again)[0]).equals(small));
  } finally {
    closeClient(s);
  }
});

test("emit --args-stdin: jq ... | siogate emit", T, async () => {
  const [s] = await clients(1);
  try {
    const got = nextOn(s, "from-jq", 5000);
    const r = await sh(
      `jq -cn '[{user: "ann", n: (6*7)}, "two", [1,2,3], null]' | "$SIOGATE" --conf "$CONF" emit -v --socket ${s.id} --args-stdin from-jq`,
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "1\n");
    assert.deepEqual(await got, [{ user: "ann", n: 42 }, "two", [1, 2, 3], null]);
    const empty = nextOn(s, "no-args", 5000);
    await ok(["emit", "--socket", s.id, "--args-stdin", "no-args"], { input: "[]\n" });
    assert.deepEqual(await empty, []);
  } finally {
    closeClient(s);
  }
});

test("emit --ack prints each socket's reply as a JSON line", T, async () => {
  const s = await clients(3);
  try {
    s.forEach((x, i) => x.on("question", (q, cb) => cb({ answer: q * 2, i }, "second")));
    const t0 = Date.now();
    const r = await cli(["emit", "--ack", "5s", "question", "21"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    assert.ok(Date.now() - t0 < 4000, "returns as soon as every socket answered");
    const lines = r.out.trim().split("\n").map((l) => JSON.parse(l));
    const all = await ok(["sockets", "--json", "--nsp", "/"]);
    assert.equal(lines.length, JSON.parse(all).length, "one line per socket of the namespace");
    for (const [i, x] of s.entries()) {
      const line = lines.find((l) => l.id === x.id);
      assert.deepEqual(line, { id: x.id, args: [{ answer: 42, i }, "second"] });
    }
    // one socket, binary in the reply shown as a placeholder
    s[0].on("bin-q", (cb) => cb(Buffer.from([1, 2, 3])));
    const b = await cli(["emit", "--ack", "2000ms", "--socket", s[0].id, "bin-q"]);
    assert.equal(b.code, 0, b.err);
    assert.deepEqual(JSON.parse(b.out), { id: s[0].id, args: [{ _placeholder: true, num: 0 }] });
    // --verbose with --ack: the count on stderr, stdout only replies
    const v = await cli(["emit", "-v", "--ack", "5", "--socket", s[1].id, "question", "1"]);
    assert.equal(v.code, 0);
    assert.equal(v.err, "siogate emit: asked 1 socket\n");
    assert.deepEqual(JSON.parse(v.out), { id: s[1].id, args: [{ answer: 2, i: 1 }, "second"] });
  } finally {
    closeAll(s);
  }
});

test("emit --ack with a timeout: exit 4, the replies that came, the silent ids on stderr", T, async () => {
  const s = await clients(3);
  try {
    s[0].on("slow", (cb) => cb("fast one"));
    s[1].on("slow", () => {}); // never answers
    s[2].on("slow", (cb) => setTimeout(() => cb("too late"), 3000));
    await ok(["join", ...joinArgs(s), "slowpokes"]);
    const t0 = Date.now();
    const r = await cli(["emit", "--ack", "800ms", "--to", "slowpokes", "slow"]);
    const took = Date.now() - t0;
    assert.equal(r.code, 4, r.err);
    assert.ok(took >= 700 && took < 3000, `waited ${took} ms`);
    assert.deepEqual(JSON.parse(r.out), { id: s[0].id, args: ["fast one"] });
    assert.match(r.err, /^siogate emit: 2 of 3 socket\(s\) did not acknowledge within 800 ms: .*; raise --ack/);
    assert.ok(r.err.includes(s[1].id) && r.err.includes(s[2].id) && !r.err.includes(s[0].id));
    assert.equal(r.err.split("\n").length, 2, "one line");
    // the late reply finds no mailbox: nothing breaks, the client stays fine
    await sleep(2500);
    const back = nextOn(s[2], "message-back", 5000);
    s[2].emit("message", "still here");
    assert.deepEqual(await back, ["still here"]);
  } finally {
    closeAll(s);
  }
});

test("emit to a room with no live sockets succeeds and reports 0", T, async () => {
  assert.equal(await ok(["emit", "-v", "--to", "nobody-here", "x"]), "0\n");
  assert.equal(await ok(["emit", "-v", "--nsp", "/never-served", "x"]), "0\n");
  assert.equal(await ok(["emit", "--to", "nobody-here", "x"]), "", "quiet without --verbose");
  const r = await cli(["emit", "--ack", "1", "--to", "nobody-here", "x"]);
  assert.deepEqual([r.code, r.out, r.err], [0, "", ""], "--ack with nobody to ask returns at once");
});

test("emit --volatile reaches clients whose poll is held", T, async () => {
  const [s] = await clients(1);
  try {
    await sleep(200); // the client's GET is held by now
    const got = nextOn(s, "v", 5000);
    assert.equal(await ok(["emit", "-v", "--volatile", "--socket", s.id, "v", "1"]), "1\n");
    assert.deepEqual(await got, [1]);
  } finally {
    closeClient(s);
  }
});

// ---- listing ----------------------------------------------------------------------------------

test("sockets: plain columns and --json parsed by jq; rooms with member counts", T, async () => {
  const s = await clients(3);
  const [f] = await clients(1, "/f");
  try {
    await ok(["join", "--socket", s[0].id, "--socket", s[1].id, "red"]);
    await ok(["join", "--socket", s[1].id, "blue", "room with space"]);
    const ids = await sh(`"$SIOGATE" --conf "$CONF" sockets --json | jq -r '.[].id'`);
    assert.equal(ids.code, 0, ids.err);
    for (const x of [...s, f]) assert.ok(ids.out.split("\n").includes(x.id), `${x.id} listed`);
    const red = await sh(`"$SIOGATE" --conf "$CONF" sockets --room red --json | jq -c '[.[] | {id, nsp, transport, rooms}]'`);
    assert.equal(red.code, 0, red.err);
    // (ordered by connection time, then id: sort to compare)
    const byId = (a, b) => (a.id < b.id ? -1 : 1);
    assert.deepEqual(
      JSON.parse(red.out).sort(byId),
      [
        { id: s[0].id, nsp: "/", transport: "polling", rooms: [s[0].id, "red"] },
        { id: s[1].id, nsp: "/", transport: "polling", rooms: [s[1].id, "blue", "red", "room with space"] },
      ].sort(byId),
    );
    const full = JSON.parse(await ok(["sockets", "--json", "--nsp", "/f"]));
    const mine = full.find((x) => x.id === f.id);
    assert.equal(mine.nsp, "/f");
    assert.equal(typeof mine.sid, "string");
    assert.equal(mine.handshake.query.EIO, "4");
    assert.equal(mine.handshake.address, "127.0.0.1");
    assert.ok(full.every((x) => x.nsp === "/f"));
    // plain: ID NSP TRANSPORT ROOM..., whitespace in names escaped
    const plain = (await ok(["sockets", "--room", "blue"])).split("\n");
    assert.deepEqual(plain, [`${s[1].id} / polling blue red room\\x20with\\x20space`, ""]);
    // rooms
    const rooms = JSON.parse(await ok(["rooms", "--json", "--nsp", "/"]));
    assert.deepEqual(
      rooms.filter((r) => ["red", "blue", "room with space"].includes(r.room)),
      [
        { nsp: "/", room: "blue", members: 1 },
        { nsp: "/", room: "red", members: 2 },
        { nsp: "/", room: "room with space", members: 1 },
      ],
    );
    assert.ok(!rooms.some((r) => r.room === s[0].id), "a socket's own room is not listed");
    const plainRooms = await ok(["rooms", "--nsp", "/"]);
    assert.match(plainRooms, /^\/ red 2$/m);
    assert.match(plainRooms, /^\/ room\\x20with\\x20space 1$/m);
  } finally {
    closeAll([...s, f]);
  }
});

test("stats: plain KEY VALUE lines and --json", T, async () => {
  const s = await clients(2);
  try {
    const st = JSON.parse(await ok(["stats", "--json"]));
    assert.ok(st.sessions.open >= 2);
    assert.ok(st.sockets.total >= 2);
    assert.ok(st.sockets.namespaces["/"].polling >= 2);
    assert.equal(typeof st.queue.frames, "number");
    assert.equal(typeof st.acks.pending, "number");
    if (IS_PG) {
      // the database as the CLI names it (its conninfo, no password)
      assert.ok(st.store.path.includes(stack.store.name), st.store.path);
      assert.ok(st.store.db_bytes > 0);
      assert.ok(st.store.total_bytes >= st.store.db_bytes);
    } else {
      assert.equal(st.store.path, stack.db);
      assert.ok(st.store.db_bytes > 0);
      assert.equal(st.store.total_bytes, st.store.db_bytes + st.store.wal_bytes + st.store.shm_bytes);
    }
    const plain = await ok(["stats"]);
    const kv = Object.fromEntries(plain.trim().split("\n").map((l) => l.split(" ")));
    for (const k of ["sessions_open", "sessions_closed", "sockets", "rooms", "queued_frames", "acks_pending", "store_bytes", "schema_version"])
      assert.match(kv[k] ?? "", /^\d+$/, `key ${k}`);
    assert.match(kv['sockets{nsp="/",transport="polling"}'], /^\d+$/);
  } finally {
    closeAll(s);
  }
});

// ---- join, leave ---------------------------------------------------------------------------------

test("join and leave: --socket, --room FROM ROOM, the own room kept", T, async () => {
  const s = await clients(3);
  const roomsOf = async (x) => JSON.parse(await ok(["sockets", "--json"])).find((y) => y.id === x.id).rooms;
  try {
    assert.equal(await ok(["join", "-v", "--socket", s[0].id, "--socket", s[1].id, "src"]), "2\n");
    assert.equal(await ok(["join", "-v", "--room", "src", "dst", "dst2"]), "2\n");
    assert.deepEqual(await roomsOf(s[0]), [s[0].id, "dst", "dst2", "src"]);
    assert.deepEqual(await roomsOf(s[2]), [s[2].id]);
    // the plugin sees it: an emit to dst reaches exactly those two
    const rec = record(s, "to-dst");
    assert.equal(await ok(["emit", "-v", "--to", "dst", "to-dst"]), "2\n");
    await rec.until((g) => g[0].length && g[1].length);
    await sleep(200);
    assert.deepEqual(rec.stop().map((g) => g.length), [1, 1, 0]);
    assert.equal(await ok(["leave", "-v", "--room", "src", "dst"]), "2\n");
    assert.deepEqual(await roomsOf(s[1]), [s[1].id, "dst2", "src"]);
    // ids may begin with '-': "--" before the rooms
    assert.equal(await ok(["leave", "-v", "--socket", s[0].id, "--", s[0].id, "src"]), "1\n");
    assert.deepEqual(await roomsOf(s[0]), [s[0].id, "dst2"], "its own room stays");
    assert.equal(await ok(["join", "-v", "--room", "no-such-room", "x"]), "0\n");
    const gone = await cli(["join", "--socket", "NoSuchSocketId000000", "x"]);
    assert.equal(gone.code, 1);
    assert.match(gone.err, /^siogate join: no live socket NoSuchSocketId000000; nothing changed .*siogate sockets/);
    const wrongNsp = await cli(["join", "--nsp", "/custom", "--socket", s[0].id, "x"]);
    assert.equal(wrongNsp.code, 1);
    assert.match(wrongNsp.err, /is in namespace \/, not \/custom/);
  } finally {
    closeAll(s);
  }
});

// ---- disconnect ------------------------------------------------------------------------------------

/** Resolves with the client-side disconnect reason. */
const disconnected = (s, ms = 5000) => withTimeout(new Promise((r) => s.once("disconnect", r)), ms, `disconnect of ${s.id}`);

test("disconnect --room disconnects its members only; handlers run once", T, async () => {
  const obs = await observer(stack);
  const s = await clients(4, "/f");
  try {
    await ok(["join", "--socket", s[0].id, "--socket", s[1].id, "kick-me"]);
    const d0 = disconnected(s[0]);
    const d1 = disconnected(s[1]);
    const ids = [s[0].id, s[1].id];
    assert.equal(await ok(["disconnect", "-v", "--room", "kick-me"]), "2\n");
    assert.equal(await d0, "io server disconnect");
    assert.equal(await d1, "io server disconnect");
    for (const id of ids) assert.equal(await obs.gone(id), "server namespace disconnect");
    await sleep(300);
    assert.ok(s[2].connected && s[3].connected, "the others stay");
    assert.equal(await ok(["disconnect", "-v", "--room", "kick-me"]), "0\n", "nobody left in it");
    // --socket, and --close: the whole client goes
    const d2 = disconnected(s[2]);
    const id2 = s[2].id; // the client forgets its id once disconnected
    assert.equal(await ok(["disconnect", "-v", "--socket", id2, "--close"]), "1\n");
    // as with the reference server: the DISCONNECT and the Engine.IO close
    // go in two poll responses, so the client sees the DISCONNECT first
    assert.equal(await d2, "io server disconnect");
    assert.equal(await obs.gone(id2), "server namespace disconnect");
    const after = JSON.parse(await ok(["sockets", "--json", "--nsp", "/f"])).map((x) => x.id);
    assert.ok(!after.includes(id2) && after.includes(s[3].id));
    const unknown = await cli(["disconnect", "--socket", id2]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /^siogate disconnect: no live socket .*siogate sockets'\n$/);
  } finally {
    closeAll([...s, obs.socket]);
  }
});

test("disconnect --all --nsp: every socket of that namespace, no other", T, async () => {
  const f = await clients(2, "/custom");
  const root = await clients(1);
  try {
    const ds = f.map((x) => disconnected(x));
    assert.equal(await ok(["disconnect", "-v", "--all", "--nsp", "/custom"]), "2\n");
    assert.deepEqual(await Promise.all(ds), ["io server disconnect", "io server disconnect"]);
    await sleep(200);
    assert.ok(root[0].connected);
    assert.equal(await ok(["sockets", "--nsp", "/custom"]), "");
  } finally {
    closeAll([...f, ...root]);
  }
});

// ---- gc --------------------------------------------------------------------------------------------

test("gc with the servers running: dead sessions expire once, racing the servers' own sweep", T, async () => {
  // a stack of its own, with short heartbeats (not shorter: the 12 dead
  // sessions must all be listed before they expire, also in the sanitizer
  // build on a busy machine; and the live watcher's pongs must come within
  // ping_timeout while the gc processes below load the machine: at 1000 ms
  // the sanitizer pass once expired it, 2026-12-06)
  const st = await startFeaturesStack({ fcgi: 1, conf: { ping_interval: 1000, ping_timeout: 2500 } });
  const c2 = join(st.dir, "siogate.conf");
  try {
    const { socket: watcher } = await connectF(st, "/f");
    await ok(["join", "--socket", watcher.id, "observers"], { conf: c2 });
    const gone = [];
    watcher.on("gone", (g) => gone.push(g));
    // 12 raw sessions that join /f and then never poll again
    const dead = [];
    for (let i = 0; i < 12; i++) {
      const { sid } = await handshake(st);
      await send(st, sid, "40/f,");
      dead.push(sid);
    }
    await sleep(100);
    const before = JSON.parse(await ok(["sockets", "--json", "--nsp", "/f"], { conf: c2 }));
    const deadIds = before.filter((x) => dead.includes(x.sid)).map((x) => x.id);
    assert.equal(deadIds.length, 12);
    // gc from several processes at once, repeatedly, while fcgi sweeps
    // too, until past the dead sessions' deadline (3.5 s)
    const end = Date.now() + 4500;
    const runs = [];
    while (Date.now() < end) {
      runs.push(...[1, 2].map(() => cli(["gc", "-v"], { conf: c2 })));
      await sleep(150);
    }
    const results = await Promise.all(runs);
    for (const r of results) assert.deepEqual([r.code, r.err], [0, ""]);
    // the handlers' emits reach the watcher's held GET (5 s at most: slow
    // in the sanitizer build), then a while more for any second one
    for (let t = 0; t < 100 && gone.filter((g) => deadIds.includes(g.id)).length < 12; t++) await sleep(50);
    await sleep(500);
    const mine = gone.filter((g) => deadIds.includes(g.id));
    assert.equal(mine.length, 12, `each disconnect handler ran once: ${JSON.stringify(gone)}`);
    assert.deepEqual(new Set(mine.map((g) => g.id)).size, 12);
    assert.ok(mine.every((g) => g.reason === "ping timeout"));
    assert.ok(watcher.connected, "a live client is not expired");
    closeClient(watcher);
  } finally {
    await st.stop();
  }
});

test("gc and emit with the servers stopped: sessions expire exactly once", T, async () => {
  const dir = mkdtempSync(join(work, "stopped-"));
  // a store that outlives its stack
  const store = await newStore(dir);
  // short heartbeats, but long enough for 20 clients to connect in the
  // sanitizer build on a busy machine
  const st = await startStack({ fcgi: 1, store, conf: { ping_interval: 1000, ping_timeout: 1000 } });
  const c2 = join(dir, "siogate.conf");
  copyFileSync(join(st.dir, "siogate.conf"), c2);
  let live = [];
  try {
    live = await Promise.all(Array.from({ length: 20 }, () => connectClient(st, "/").then((c) => c.socket)));
    await ok(["join", ...joinArgs(live), "r"], { conf: c2 });
  } finally {
    await st.stop(); // the servers go; the sessions stay open in the store
    closeAll(live);
  }
  assert.match(await ok(["sockets"], { conf: c2 }), /(\n.*){19}/, "still listed until gc");
  await sleep(2200); // past ping_interval + ping_timeout
  const runs = await Promise.all([1, 2, 3, 4].map(() => cli(["gc", "-v"], { conf: c2 })));
  for (const r of runs) assert.deepEqual([r.code, r.err], [0, ""]);
  const closed = runs.reduce((n, r) => n + Number(r.out), 0);
  assert.equal(closed, 20, `four concurrent gc closed ${runs.map((r) => r.out.trim())}`);
  assert.equal(await ok(["gc", "-v"], { conf: c2 }), "0\n");
  assert.equal(await ok(["sockets"], { conf: c2 }), "");
  assert.equal(await ok(["emit", "-v", "--to", "r", "x"], { conf: c2 }), "0\n");
  const stats = JSON.parse(await ok(["stats", "--json"], { conf: c2 }));
  assert.equal(stats.sessions.open, 0);
  assert.equal(stats.sessions.closed, 20);
  await store.drop();
  rmSync(dir, { recursive: true, force: true });
});

// ---- check ------------------------------------------------------------------------------------------

test("check: quiet when all is well; every problem reported otherwise", T, async () => {
  assert.equal(await ok(["check"]), "");
  const v = await ok(["check", "-v"]);
  assert.match(v, /^ok: configuration /m);
  assert.match(v, /^ok: plugin .*echo\.so$/m);
  assert.match(v, /^ok: plugin .*features\.so$/m);
  const bad = join(work, "bad.conf");
  writeFileSync(
    bad,
    [
      `db = ${stack.db}`,
      "ping_interval = soon",
      `plugin = ${pluginPath("echo")}`,
      "colour = blue",
      `plugin = ${join(work, "missing.so")}`,
      `plugin = ${join(work, "bad.conf")}`,
      "",
    ].join("\n"),
  );
  const r = await cli(["check"], { conf: bad });
  assert.equal(r.code, 1);
  const lines = r.err.trim().split("\n");
  assert.match(lines[0], /^siogate check: .*bad\.conf:2: /);
  assert.match(lines[1], /^siogate check: .*bad\.conf:4: /);
  assert.ok(lines.some((l) => /^siogate check: plugin .*missing\.so: No such file/.test(l)), r.err);
  assert.ok(lines.some((l) => /^siogate check: .*bad\.conf.*(ELF|invalid|too short|header)/i.test(l) && !/:\d+: /.test(l)), r.err);
  assert.match(lines.at(-1), /^siogate check: 4 problems found$/);
  assert.ok(lines.every((l) => l.startsWith("siogate check: ")), "one line per problem");
  // another command with the bad conf: a usage/configuration error, one line
  const e = await cli(["stats"], { conf: bad });
  assert.equal(e.code, 2);
  assert.match(e.err, /^siogate stats: .*bad\.conf:2: .*siogate --conf .* check' lists every problem\)\n$/);
});

// ---- load and locks ---------------------------------------------------------------------------------

test("a concurrent writer load: 200 CLI emits, none lost, no lock failures", T, async () => {
  const s = await clients(10);
  const busy = await clients(6);
  try {
    await ok(["join", ...joinArgs(s), "load"]);
    const seen = s.map(() => new Set());
    s.forEach((x, i) => x.on("seq", (n) => seen[i].add(n)));
    // writers through the servers: every busy client echoes as fast as it can
    let stop = false;
    const loops = busy.map(async (x) => {
      let n = 0;
      while (!stop) {
        const back = nextOn(x, "message-back", 10000);
        x.emit("message", n++, "x".repeat(200));
        await back;
      }
      return n;
    });
    // 4 CLI writers at once, 50 emits each
    const results = [];
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let k = 0; k < 50; k++) results.push(await cli(["emit", "-v", "--to", "load", "seq", String(w * 50 + k)]));
      }),
    );
    stop = true;
    const echoed = await Promise.all(loops);
    for (const r of results) assert.deepEqual([r.code, r.err, r.out], [0, "", "10\n"]);
    const end = Date.now() + 10000;
    while (Date.now() < end && !seen.every((x) => x.size === 200)) await sleep(50);
    seen.forEach((x, i) => assert.equal(x.size, 200, `client ${i} got ${x.size} of 200`));
    assert.ok(echoed.every((n) => n > 0), "the servers were busy meanwhile");
  } finally {
    closeAll([...s, ...busy]);
  }
});

test("a store locked past the timeout: exit 3 and a one-line message", { ...T, timeout: 120000 }, async () => {
  const lock = await holdWriteLock(stack.db);
  try {
    // reads do not wait for writers (SQLite's WAL; PostgreSQL's MVCC)
    assert.equal((await cli(["stats", "--json"])).code, 0);
    const [join1, emit1] = await Promise.all([
      cli(["join", "--room", "a", "b"]),
      cli(["emit", "--to", "a", "x"]),
    ]);
    assert.equal(join1.code, 3, join1.err);
    assert.match(join1.err, /^siogate join: .*locked.*retry later\n$/);
    assert.equal(emit1.code, 3, emit1.err);
    assert.match(emit1.err, /^siogate emit: .*locked.*retry later.*\n$/);
    assert.equal(emit1.err.split("\n").length, 2, "one line");
  } finally {
    await lock.release();
  }
  assert.equal(await ok(["emit", "-v", "--to", "a", "x"]), "0\n", "fine once the lock is gone");
});
