// The chat demo in a real browser: contrib/demo (lighttpd, siogate-fcgi,
// siogate-wsd, the chat plugin) on a port and a store of its own, and
// headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// with two pages, each in its own browser context (its own storage and
// network). They set nicknames and chat in a room, see each other join and
// leave, send an image, see a `siogate emit` run from a shell as from the
// server, and one page's network is cut and restored. Screenshots go to
// $SG_BUILDDIR/tests/integration/.artifacts/browser/.
//
// Runs once (tests/run does not rerun it behind nginx and Apache: the demo
// always runs behind lighttpd). With SG_STORE=pg the demo's conf names a
// database of its own (lib/store.mjs's newStore) and its bell_dir: the demo
// then deletes nothing and takes no lock, and refuses a database that holds
// siogate's tables already unless given --reuse (contrib/demo's header). SG_CHROMIUM names another browser binary;
// SG_BROWSER=0 skips it (tests/run's make distcheck: it ran in the main pass).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { deflateSync } from "node:zlib";
import { connect } from "node:net";
import { chromium } from "playwright-core";
import { SRCDIR, BUILDDIR, IS_REFERENCE, freePort, pluginPath } from "./lib/stack.mjs";
import { withTimeout, sleep } from "./lib/util.mjs";
import { IS_PG, newStore, storeQuery, psqlPath } from "./lib/store.mjs";

const skip = IS_REFERENCE
  ? "siogate only (the demo)"
  : process.env.SG_BROWSER === "0"
    ? "SG_BROWSER=0"
    : false;
const T = { timeout: 120000, skip };
const CHROMIUM = process.env.SG_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = join(BUILDDIR, "tests", "integration", ".artifacts", "browser");
const WAIT = 15000; // for anything a page should show

// ------------------------------------------------------------------ the demo
// contrib/demo in its own process group (a last-resort kill reaches all of
// it), its stdout collected: the URL and the emit line.
// (On PostgreSQL it asks the database with psql: the server's own, first.)
function startDemo(conf, port, args = []) {
  const env = { ...process.env, PORT: String(port), SG_BUILDDIR: BUILDDIR };
  if (IS_PG) env.PATH = `${dirname(psqlPath())}:${env.PATH}`;
  const child = spawn(join(SRCDIR, "contrib", "demo"), ["--conf", conf, ...args], {
    cwd: BUILDDIR,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  const d = { child, out: "", err: "" };
  child.stdout.setEncoding("utf8").on("data", (s) => (d.out += s));
  child.stderr.setEncoding("utf8").on("data", (s) => {
    d.err += s;
    if (d.err.length > 64 * 1024) d.err = d.err.slice(-32 * 1024);
  });
  d.exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return d;
}

// the demo's banner, once it printed the emit line
async function banner(d) {
  const deadline = Date.now() + 40000;
  while (Date.now() < deadline && !/^ {4}\S.* emit .*$/m.test(d.out)) {
    if (d.child.exitCode !== null) break;
    await sleep(50);
  }
  const url = /The chat is at (http:\/\/127\.0\.0\.1:\d+)\//.exec(d.out);
  const emit = /^ {4}(\S.* emit .*)$/m.exec(d.out);
  assert.ok(url && emit, `contrib/demo printed no URL and emit line:\n${d.out}\n--- stderr:\n${d.err.slice(-3000)}`);
  return { url: url[1], emit: emit[1] };
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

// runs a shell command line; resolves {code, stdout, stderr}
function sh(line, ms = 15000) {
  const c = spawn("/bin/sh", ["-c", line], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  c.stdout.on("data", (s) => (stdout += s));
  c.stderr.on("data", (s) => (stderr += s));
  return withTimeout(new Promise((r) => c.once("exit", (code) => r({ code, stdout, stderr }))), ms, line);
}

function refused(port) {
  return new Promise((r) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      r(false);
    });
    s.once("error", () => r(true));
  });
}

// ------------------------------------------------------------------ a PNG
const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A w x h RGB PNG: a blue-to-orange gradient with a white disc. */
function makePng(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const t = (x + y) / (w + h);
      const disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 4) ** 2;
      raw[o] = disc ? 255 : Math.round(59 + t * (230 - 59));
      raw[o + 1] = disc ? 255 : Math.round(91 + t * (119 - 91));
      raw[o + 2] = disc ? 255 : Math.round(219 + t * (0 - 219));
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from("89504e470d0a1a0a", "hex"),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------ pages
let scratch, store, conf, port, demo, url, emitLine, browser;
const ctx = {}; // ann, bob: {context, page}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

const badgeState = (page) => page.$eval("#badge", (b) => b.dataset.state);

async function waitBadge(page, states, what) {
  try {
    await page.waitForFunction((s) => s.includes(document.getElementById("badge").dataset.state), states, {
      timeout: WAIT,
    });
  } catch (e) {
    e.message = `${what}: badge is "${await badgeState(page)}", want one of ${states.join(", ")}\n${e.message}`;
    throw e;
  }
}

// the texts of the lines of a room's log (system lines, messages)
const lines = (page, room) =>
  page.$$eval(`#messages ol[data-room="${room}"] li`, (els) =>
    els.map((li) => ({ cls: li.className, text: li.textContent })),
  );
const members = (page) => page.$$eval("#members li", (els) => els.map((li) => li.textContent).sort());

// waits until fn(lines) holds for the room's log
async function waitLines(page, room, pred, what) {
  const deadline = Date.now() + WAIT;
  let got = [];
  while (Date.now() < deadline) {
    got = await lines(page, room);
    if (pred(got)) return got;
    await sleep(50);
  }
  assert.fail(`${what}: #${room} shows ${JSON.stringify(got)}`);
}

async function waitMembers(page, want, what) {
  const deadline = Date.now() + WAIT;
  let got = [];
  while (Date.now() < deadline) {
    got = await members(page);
    if (JSON.stringify(got) === JSON.stringify([...want].sort())) return;
    await sleep(50);
  }
  assert.fail(`${what}: members ${JSON.stringify(got)}, want ${JSON.stringify([...want].sort())}`);
}

async function openChat(nick) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url + "/", { timeout: WAIT });
  await page.fill("#nick", nick);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#chat:not([hidden])", { timeout: WAIT });
  await page.waitForFunction(() => document.getElementById("room-title").textContent === "lobby", null, {
    timeout: WAIT,
  });
  return { context, page, errors };
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#send");
}

before(async () => {
  if (skip) return;
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found (contrib/setup installs Debian's chromium)`);
  const tmp = join(BUILDDIR, "tests", "integration", ".tmp");
  mkdirSync(tmp, { recursive: true });
  scratch = mkdtempSync(join(tmp, "browser-"));
  conf = join(scratch, "demo.conf");
  // the store of this test alone (a file, or a new PostgreSQL database and
  // a bell_dir); pings every 2 s so that a cut page is noticed soon
  store = await newStore(scratch);
  writeFileSync(
    conf,
    [...Object.entries(store.conf).map(([k, v]) => `${k} = ${v}`), `plugin = ${pluginPath("chat")}`,
      "path = /socket.io/", "ping_interval = 2000", "ping_timeout = 2000", ""].join("\n"),
  );
  port = await freePort();
  demo = startDemo(conf, port);
  ({ url, emit: emitLine } = await banner(demo));
  browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30000 });
});

after(async () => {
  for (const [name, c] of Object.entries(ctx)) {
    try {
      await shot(c.page, `zz-last-${name}`);
    } catch {
      /* the page may be gone */
    }
  }
  if (browser) await browser.close().catch(() => {});
  if (demo && groupAlive(demo.child.pid)) {
    try {
      process.kill(demo.child.pid, "SIGTERM");
    } catch {
      /* gone */
    }
    const done = await Promise.race([demo.exited.then(() => true), sleep(15000).then(() => false)]);
    if (!done || groupAlive(demo.child.pid)) {
      try {
        process.kill(-demo.child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  }
  if (store) await store.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("contrib/demo prints the URL and an emit line for its own conf; a second demo on that store refuses", T, async () => {
  assert.equal(url, `http://127.0.0.1:${port}`);
  assert.ok(emitLine.startsWith(`${join(BUILDDIR, "gateway", "siogate")} --conf ${conf} emit --nsp /chat --to '#lobby' said `), emitLine);
  // SQLite: the flock beside the file; PostgreSQL: no lock, the first
  // demo's tables are there
  assert.equal(existsSync(join(scratch, "demo.lock")), !IS_PG, "demo.lock beside the store on SQLite only");
  const second = startDemo(conf, await freePort());
  let r;
  try {
    r = await withTimeout(second.exited, 15000, "second demo to exit");
  } finally {
    // one that started after all is stopped, whole
    if (!r && groupAlive(second.child.pid)) process.kill(-second.child.pid, "SIGKILL");
  }
  assert.equal(r.code, 1, second.err);
  if (IS_PG) {
    assert.match(second.err, new RegExp(`database "${store.name}" holds siogate's tables already.*--reuse`));
    assert.doesNotMatch(second.err, /postgresql:\/\/|host=/, "the conninfo is not printed");
  } else {
    assert.match(second.err, /another demo runs on/);
  }
  // the first one is unharmed
  assert.equal(demo.child.exitCode, null, demo.err.slice(-2000));
});

test(
  "PostgreSQL: --reuse runs a demo on that database as it is, with a bell_dir of its own when the conf has none",
  IS_PG ? T : { ...T, skip: T.skip || "PostgreSQL only (a SQLite store is always started empty)" },
  async () => {
    const conf2 = join(scratch, "reuse.conf");
    writeFileSync(conf2, [`db = ${store.db}`, `plugin = ${pluginPath("chat")}`, "path = /socket.io/", ""].join("\n"));
    const third = startDemo(conf2, await freePort(), ["--reuse"]);
    let stopped = false;
    try {
      const b = await banner(third);
      assert.match(third.err, new RegExp(`running on database "${store.name}" as it is \\(--reuse\\)`));
      // it runs on a copy of the conf with bell_dir added, and says so
      const copy = /--conf (\S+\/demo\.conf) emit /.exec(b.emit);
      assert.ok(copy && copy[1] !== conf2, b.emit);
      const r = await sh(`grep -c '^bell_dir = ' ${copy[1]}`);
      assert.equal(r.stdout.trim(), "1", r.stderr);
      process.kill(third.child.pid, "SIGTERM");
      const e = await withTimeout(third.exited, 20000, "the --reuse demo to exit");
      stopped = true;
      assert.equal(e.code, 0, third.err.slice(-2000));
      assert.equal(existsSync(copy[1]), false, "its temporary directory is gone");
      // nothing of the store was deleted: the first demo's tables are there
      assert.equal(await storeQuery(store.db, "SELECT count(*) FROM schema_version"), "1");
    } finally {
      if (!stopped && groupAlive(third.child.pid)) process.kill(-third.child.pid, "SIGKILL");
    }
    assert.equal(demo.child.exitCode, null, demo.err.slice(-2000));
  },
);

test("two pages: nicknames, the lobby, each sees the other join and speak, member lists", T, async () => {
  ctx.ann = await openChat("ann");
  await waitBadge(ctx.ann.page, ["polling", "websocket"], "ann connected");
  ctx.bob = await openChat("bob");
  const { page: a } = ctx.ann;
  const { page: b } = ctx.bob;
  // the default transports upgrade to WebSocket through siogate-wsd
  await waitBadge(a, ["websocket"], "ann upgraded");
  await waitBadge(b, ["websocket"], "bob upgraded");
  await waitLines(a, "lobby", (l) => l.some((x) => x.cls === "system" && x.text === "bob joined"), "ann sees bob join");
  await waitMembers(a, ["ann", "bob"], "ann's lobby");
  await waitMembers(b, ["ann", "bob"], "bob's lobby");
  assert.equal(await a.textContent("#me"), "ann");
  // their sessions are in the store the test gave the demo
  assert.ok(Number(await storeQuery(store.db, "SELECT count(*) FROM sessions WHERE state = 0")) >= 2);

  await say(a, "hi bob, ça va ?");
  await say(b, "hello ann <b>not bold</b>");
  for (const [p, who] of [[a, "ann"], [b, "bob"]]) {
    const got = await waitLines(p, "lobby", (l) => l.filter((x) => /^msg/.test(x.cls)).length === 2, `${who} sees both`);
    const msgs = got.filter((x) => /^msg/.test(x.cls));
    assert.ok(/^ann/.test(msgs[0].text) && msgs[0].text.endsWith("hi bob, ça va ?"), msgs[0].text);
    assert.match(msgs[1].text, /^bob.*hello ann <b>not bold<\/b>$/);
    assert.equal(msgs[0].cls, who === "ann" ? "msg mine" : "msg");
    assert.equal(msgs[1].cls, who === "bob" ? "msg mine" : "msg");
  }
  // text stays text
  assert.equal(await b.$$eval("#messages b", (e) => e.length), 0);
  await shot(a, "1-lobby-ann");
  await shot(b, "1-lobby-bob");
});

test("rooms: join, switch, leave; the other page sees the join and leave lines and the member list change", T, async () => {
  const { page: a } = ctx.ann;
  const { page: b } = ctx.bob;
  await b.fill("#room", "garden");
  await b.press("#room", "Enter");
  await b.waitForFunction(() => document.getElementById("room-title").textContent === "garden", null, { timeout: WAIT });
  await waitMembers(b, ["bob"], "bob alone in the garden");
  await a.fill("#room", "#garden");
  await a.press("#room", "Enter");
  await waitLines(b, "garden", (l) => l.some((x) => x.text === "ann joined"), "bob sees ann join the garden");
  await waitMembers(b, ["ann", "bob"], "bob's garden");
  await waitMembers(a, ["ann", "bob"], "ann's garden");
  await say(a, "nice flowers");
  await waitLines(b, "garden", (l) => l.some((x) => /nice flowers$/.test(x.text)), "bob hears ann in the garden");
  // ann's lobby did not get it
  assert.ok(!(await lines(a, "lobby")).some((x) => /nice flowers/.test(x.text)), "not in the lobby");
  // the room list: both rooms, the garden current
  assert.deepEqual(await a.$$eval("#rooms li", (e) => e.map((li) => li.dataset.room)), ["lobby", "garden"]);
  await a.click("#leave");
  await waitLines(b, "garden", (l) => l.some((x) => x.text === "ann left"), "bob sees ann leave");
  await waitMembers(b, ["bob"], "bob alone again");
  await a.waitForFunction(() => document.getElementById("room-title").textContent === "lobby", null, { timeout: WAIT });
  assert.deepEqual(await a.$$eval("#rooms li", (e) => e.map((li) => li.dataset.room)), ["lobby"]);
  await shot(b, "2-garden-bob");
  // bob switches back to the lobby
  await b.click('#rooms li[data-room="lobby"]');
  await b.waitForFunction(() => document.getElementById("room-title").textContent === "lobby", null, { timeout: WAIT });
  await waitMembers(b, ["ann", "bob"], "bob's lobby again");
});

test("image: sent as binary by one page, shown decoded on both; too big is refused", T, async () => {
  const { page: a } = ctx.ann;
  const { page: b } = ctx.bob;
  const png = makePng(96, 64);
  await a.setInputFiles("#file", { name: "picture.png", mimeType: "image/png", buffer: png });
  for (const [p, who] of [[a, "ann"], [b, "bob"]]) {
    await p.waitForFunction(
      () => [...document.querySelectorAll('#messages ol[data-room="lobby"] img')].some((i) => i.complete && i.naturalWidth > 0),
      null,
      { timeout: WAIT },
    );
    const size = await p.$eval('#messages ol[data-room="lobby"] img', (i) => [i.naturalWidth, i.naturalHeight]);
    assert.deepEqual(size, [96, 64], `${who}: the image decoded at its size`);
    const blob = await p.$eval('#messages ol[data-room="lobby"] img', (i) => i.src);
    assert.match(blob, /^blob:/, `${who}: made from the binary attachment`);
  }
  // 600 KB: the page refuses it before sending (the plugin would, too)
  const big = Buffer.concat([png, Buffer.alloc(600 * 1024)]);
  await a.setInputFiles("#file", { name: "big.png", mimeType: "image/png", buffer: big });
  await waitLines(a, "lobby", (l) => l.some((x) => x.cls === "system error" && /big\.png: \d+ KB, the limit is 512 KB/.test(x.text)), "ann told the image is too big");
  assert.equal(await b.$$eval('#messages ol[data-room="lobby"] img', (e) => e.length), 1, "bob got one image");
  await shot(b, "3-image-bob");
});

test("siogate emit from a shell: both pages show it as from the server", T, async () => {
  const { page: a } = ctx.ann;
  const { page: b } = ctx.bob;
  const r = await sh(`cd / && ${emitLine}`);
  assert.equal(r.code, 0, r.stderr);
  for (const [p, who] of [[a, "ann"], [b, "bob"]]) {
    const got = await waitLines(p, "lobby", (l) => l.some((x) => x.cls === "server"), `${who} shows the shell's message`);
    const s = got.filter((x) => x.cls === "server");
    assert.equal(s.length, 1);
    assert.match(s[0].text, /^from the server.*hello from the shell$/);
  }
  await shot(a, "4-server-ann");
  await shot(b, "4-server-bob");
});

test("network cut and restored: the badge says reconnecting, then connected; messages flow again", T, async () => {
  const { page: a } = ctx.ann;
  const { page: b, context: bctx } = ctx.bob;
  await bctx.setOffline(true);
  await waitBadge(b, ["reconnecting"], "bob cut off");
  // the server notices (ping timeout or a closed transport): ann sees bob leave
  await waitLines(a, "lobby", (l) => l.some((x) => /^bob left \(/.test(x.text)), "ann sees bob go");
  await waitMembers(a, ["ann"], "ann alone");
  await say(a, "while bob is away");
  await shot(b, "5-reconnecting-bob");
  await sleep(500);
  await bctx.setOffline(false);
  await waitBadge(b, ["polling", "websocket"], "bob back");
  await waitLines(b, "lobby", (l) => l.some((x) => x.text === "back in #lobby"), "bob rejoined the lobby");
  await waitLines(a, "lobby", (l) => l.filter((x) => x.text === "bob joined").length >= 2, "ann sees bob join again");
  await waitMembers(a, ["ann", "bob"], "ann's lobby after");
  await waitMembers(b, ["ann", "bob"], "bob's lobby after");
  assert.ok(!(await lines(b, "lobby")).some((x) => /while bob is away/.test(x.text)), "no message while away");
  await say(a, "welcome back");
  await waitLines(b, "lobby", (l) => l.some((x) => /^ann.*welcome back$/.test(x.text)), "bob gets messages again");
  await waitBadge(b, ["websocket"], "bob upgraded again");
  await shot(a, "6-after-reconnect-ann");
  await shot(b, "6-after-reconnect-bob");
  assert.deepEqual([...ctx.ann.errors, ...ctx.bob.errors], [], "no script errors on the pages");
});

test("Ctrl-C (SIGINT to the demo's process group) stops everything it started", T, async () => {
  await browser.close();
  browser = null;
  const pid = demo.child.pid;
  process.kill(-pid, "SIGINT");
  const r = await withTimeout(demo.exited, 20000, "contrib/demo to exit on SIGINT");
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal}\n${demo.err.slice(-2000)}`);
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && groupAlive(pid)) await sleep(100);
  assert.equal(groupAlive(pid), false, "nothing of the demo's process group is left");
  assert.equal(await refused(port), true, "the port is closed");
});
