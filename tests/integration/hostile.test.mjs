// Hostile input beyond plain malformation (badinput.test.mjs has that):
// each kind gets its documented outcome, and a client that was connected
// all along is still served, as is a fresh one.
//
// Outcomes (README, "Known limits"):
//   - JSON nested deeper than 128 arrays/objects (counting the packet's own
//     array: every walk over a tree in siogate is recursive and bounded by
//     it, gateway/socketio.c), invalid UTF-8 in a text packet, more than 10
//     attachments (socket.io-parser's maxAttachments), a placeholder
//     naming an attachment that was not sent: the session ends as a parse
//     error (the reference server, decoding with replacement characters
//     and with no nesting bound of its own, would carry on for the first
//     two);
//   - nesting up to the bound is carried intact;
//   - a header flood (5,000 headers, or one header of 1 MB): the web server
//     refuses the request (4xx) before siogate sees it;
//   - clients that write their request, or read their response, a few
//     bytes a second: the web server holds them (its own timeouts end
//     them); siogate-fcgi gets whole requests and hands whole responses
//     to the web server, so nobody else waits;
//   - one session sending thousands of events a second, over polling or
//     WebSocket: each is handled (its echoes queued for it); a session that
//     does not read what is queued for it is closed ("transport error",
//     its queue deleted) by the request of its own that leaves more than
//     max_queued_packets (1,000 by default) queued: no other process ever
//     sees more queued for it;
//   - a WebSocket client that never reads: siogate-wsd's output buffer for
//     it holds at most about 1 MiB (OUT_LIMIT), its own answers to the
//     client's events included; beyond it they wait in the store, where
//     max_queued_packets applies, so a client that pongs blind (no reading
//     needed) and sends acked events is closed by it, siogate-wsd's memory
//     unchanged; one that sends nothing ends at its heartbeat deadline; a
//     client that stops reading for a while and reads again gets every
//     answer, in order; the other WebSockets of the same siogate-wsd are
//     served throughout.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { BUILDDIR, IS_REFERENCE, startStack } from "./lib/stack.mjs";
import { assertServesFreshClient, closeAllClients, connectClient, emitAck } from "./lib/client.mjs";
import { eioUrl, handshake, send, waitSessionGone, RS, connectedSession } from "./lib/eio.mjs";
import { sleep, waitUntil } from "./lib/util.mjs";
import { rawWsSession, wsdSocket } from "./lib/rawws.mjs";
import { storeQuery, storeQuerySync } from "./lib/store.mjs";

const T = { timeout: 60000 };
const execFileP = promisify(execFile);
// what needs the store, the CLI or siogate's processes
const SG = { ...T, skip: IS_REFERENCE ? "siogate only (the store, the CLI)" : false };

let stack, bystander, wsBystander;
before(async () => {
  stack = await startStack({ fcgi: 1, conf: { ping_interval: 3000, ping_timeout: 2000 } });
  ({ socket: bystander } = await connectClient(stack, "/"));
  ({ socket: wsBystander } = await connectClient(stack, "/", { transports: ["websocket"] }));
  bystander.on("disconnect", (r, d) => gone.push(`polling: ${r} ${d ? JSON.stringify(d.description ?? d) : ""}`));
  wsBystander.on("disconnect", (r, d) => gone.push(`WebSocket: ${r} ${d ? JSON.stringify(d.description ?? d) : ""}`));
});
const gone = [];
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

/** The bystanders (one polling, one WebSocket) each get an acked echo. */
async function bystandersServed(tag = "still here?") {
  for (const [who, s] of [["polling", bystander], ["WebSocket", wsBystander]]) {
    let got;
    try {
      got = await emitAck(s, "message-with-ack", [tag]);
    } catch (e) {
      throw new Error(`the ${who} bystander, "${tag}": ${e.message} (disconnects: ${gone.join(", ")})`);
    }
    assert.deepEqual(got, [tag], `the ${who} bystander`);
  }
}

// body (a string or bytes) ends the session; the bystanders and a fresh
// client are served.
async function assertEndsSession(body) {
  const sid = await connectedSession(stack);
  const r = await send(stack, sid, body);
  assert.ok(r.status === 200 || r.status === 400, `status ${r.status} ${r.body}`);
  await waitSessionGone(stack, sid, 3000);
  await bystandersServed();
  await assertServesFreshClient(stack, assert);
}

const nested = (depth) => "[".repeat(depth) + "]".repeat(depth);

test("JSON nested 128 deep (the bound, with the packet's array): carried intact", T, async () => {
  let v = [];
  for (let i = 1; i < 127; i++) v = [v];
  const [back] = await emitAck(bystander, "message-with-ack", [v]);
  assert.equal(JSON.stringify(back), nested(127));
});

test("JSON nested 129 deep: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`42["message",${nested(128)}]`);
});

test("JSON nested 100,000 deep: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`42["message",${nested(100000)}]`);
});

test("invalid UTF-8 in a text packet: the session ends; everyone else is served", T, async () => {
  const head = Buffer.from('42["message","a');
  const tail = Buffer.from('b"]');
  await assertEndsSession(Buffer.concat([head, Buffer.from([0xff, 0xfe]), tail]));
});

test("more than 10 attachments announced: the session ends; everyone else is served", T, async () => {
  const att = Array.from({ length: 11 }, (_, i) => `{"_placeholder":true,"num":${i}}`).join(",");
  const bins = Array.from({ length: 11 }, () => "bAQID").join(RS);
  await assertEndsSession(`4511-["message",${att}]${RS}${bins}`);
});

test("a placeholder naming an attachment never sent: the session ends; everyone else is served", T, async () => {
  await assertEndsSession(`451-["message",{"_placeholder":true,"num":3}]${RS}bAQID`);
});

// ------------------------------------------------------------ raw HTTP
/** Host, port and path (with the query) of the Engine.IO endpoint. */
function target(params = {}) {
  const u = new URL(eioUrl(stack, params));
  return { host: u.hostname, port: Number(u.port), path: u.pathname + u.search };
}

/**
 * Writes `head` on a new TCP connection (in pieces of `chunk` bytes every
 * `everyMs` when given) and resolves with the status of the answer (0 if
 * the connection ended without one). Bounded by `ms`.
 */
function rawRequest(head, { chunk, everyMs, ms = 15000 } = {}) {
  const { host, port } = target();
  return new Promise((resolve) => {
    const c = net.connect(port, host);
    let got = "";
    let timer, drip;
    const done = (v) => {
      clearTimeout(timer);
      clearInterval(drip);
      c.destroy();
      resolve(v);
    };
    timer = setTimeout(() => done({ status: -1, got }), ms);
    c.on("data", (d) => {
      got += d.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (m) done({ status: Number(m[1]), got });
    });
    c.on("error", () => done({ status: 0, got }));
    c.on("close", () => done({ status: 0, got }));
    c.on("connect", () => {
      if (!chunk) return c.write(head);
      let off = 0;
      drip = setInterval(() => {
        if (off >= head.length) return clearInterval(drip);
        c.write(head.slice(off, off + chunk));
        off += chunk;
      }, everyMs);
    });
  });
}

test("a header flood (5,000 headers; one header of 1 MB): 4xx from the web server; everyone else is served", T, async (t) => {
  const { host, port, path } = target();
  const start = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n`;
  let many = start;
  for (let i = 0; i < 5000; i++) many += `X-Flood-${i}: ${i}\r\n`;
  const big = start + `X-Big: ${"a".repeat(1 << 20)}\r\n`;
  const answers = await Promise.all([rawRequest(many + "\r\n"), rawRequest(big + "\r\n")]);
  for (const a of answers)
    assert.ok(a.status === 0 || (a.status >= 400 && a.status < 500), `answered ${a.status}: ${a.got.slice(0, 200)}`);
  assert.ok(answers.some((a) => a.status >= 400), `no 4xx at all: ${JSON.stringify(answers.map((a) => a.status))}`);
  t.diagnostic(`answers: 5,000 headers ${answers[0].status}, 1 MB header ${answers[1].status} (0: closed)`);
  await bystandersServed();
  await assertServesFreshClient(stack, assert);
});

test("20 clients writing their requests a few bytes a second (slowloris): everyone else is served meanwhile", T, async () => {
  const { host, port, path } = target();
  const head = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: slow\r\nX-Pad: ${"p".repeat(200)}\r\n\r\n`;
  // 4 bytes every 250 ms: the request would take over 15 s; stopped at 6 s
  const slow = Array.from({ length: 20 }, () => rawRequest(head, { chunk: 4, everyMs: 250, ms: 6000 }));
  await sleep(1000);
  for (let i = 0; i < 4; i++) {
    await bystandersServed(`during ${i}`);
    await sleep(500);
  }
  await assertServesFreshClient(stack, assert);
  const res = await Promise.all(slow);
  // none of them was answered as a whole request before it was complete
  assert.ok(res.every((r) => r.status !== 200), `statuses ${res.map((r) => r.status)}`);
});

test("a client reading a 600 KB response 1 KB at a time: everyone else is served meanwhile", SG, async () => {
  const sid = await connectedSession(stack);
  // 600 packets of 1 KB queued for it (the echo plugin answers each)
  const arg = "x".repeat(1000);
  let body = [];
  for (let i = 0; i < 600; i++) body.push(`42["message","${arg}"]`);
  assert.equal((await send(stack, sid, body.join(RS), { timeoutMs: 15000 })).status, 200);
  const { host, port, path } = target({ sid });
  const c = net.connect(port, host);
  let got = 0;
  c.on("data", () => {});
  c.on("error", () => {});
  await new Promise((r) => c.once("connect", r));
  c.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`);
  c.setNoDelay(true);
  // read 1 KB, then pause for 100 ms, for 5 s
  c.pause();
  const reader = (async () => {
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      const d = c.read(1024);
      if (d) got += d.length;
      await sleep(100);
    }
  })();
  for (let i = 0; i < 4; i++) {
    await bystandersServed(`during ${i}`);
    await sleep(500);
  }
  await reader;
  c.destroy();
  assert.ok(got > 0 && got < 600 * 1000, `read ${got} bytes of the response`);
  await bystandersServed("after");
});

/**
 * Rows queued for sid in the store and not yet handed to its transport
 * (what max_queued_packets counts; a polling GET's rows stay until the
 * next GET). Async: the bystanders keep answering pings.
 */
async function queuedAsync(sid) {
  const q = `SELECT count(*) FROM queue WHERE sid = '${sid}'` +
    ` AND seq > coalesce((SELECT sent_upto FROM sessions WHERE sid = '${sid}'), 0);`;
  return Number(await storeQuery(stack.db, q, { timeout: 10000 }));
}

/** "state|close_reason" of sid in the store ("" once purged). */
async function stateOf(sid) {
  return storeQuery(stack.db, `SELECT state || '|' || coalesce(close_reason, '') FROM sessions WHERE sid = '${sid}';`, { timeout: 10000 });
}

const LIMIT = 1000; // max_queued_packets, its default

test("one polling session sending thousands of events a second, never reading: closed once its queue passes max_queued_packets, which it never stays above", SG, async (t) => {
  const sid = await connectedSession(stack);
  const batch = Array.from({ length: 500 }, (_, i) => `42["message",${i}]`).join(RS);
  let events = 0, peak = 0, last = 0;
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    const r = await send(stack, sid, batch, { timeoutMs: 10000 });
    last = r.status;
    if (r.status !== 200) break;
    events += 500;
    // what the others see after each request: never over the limit
    const n = await queuedAsync(sid);
    peak = Math.max(peak, n);
    assert.ok(n <= LIMIT, `${n} rows queued for it after ${events} events`);
    if (events % 1000 === 0) await bystandersServed(`during the flood, ${events}`);
  }
  t.diagnostic(`${events} events accepted; at most ${peak} rows queued for it; then HTTP ${last}`);
  // 500 echoes a POST: 1,000 fit, the third POST passes the limit and
  // closes it ("transport error", its queue deleted); the next one is 400
  assert.equal(events, 1500);
  assert.equal(last, 400);
  assert.equal(await stateOf(sid), "1|transport error");
  assert.equal(await queuedAsync(sid), 0);
  await waitSessionGone(stack, sid, 3000);
  await bystandersServed("after");
});

/** A raw WebSocket session (websocket only), connected to "/". */
async function rawWebSocket() {
  const url = eioUrl(stack, { transport: "websocket" }).replace(/^http/, "ws");
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const frames = [];
  ws.on("message", (d, binary) => frames.push(binary ? d : d.toString()));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  await waitUntil(() => frames.some((f) => String(f).startsWith("0{")), 5000, "the open packet");
  const sid = JSON.parse(frames.find((f) => String(f).startsWith("0{")).slice(1)).sid;
  ws.send("40");
  await waitUntil(() => frames.some((f) => String(f).startsWith("40")), 5000, "the CONNECT reply");
  return { ws, sid, frames };
}

test("one WebSocket session sending thousands of events a second: the others are served; it gets its echoes", SG, async () => {
  const { ws, frames } = await rawWebSocket();
  const end = Date.now() + 3000;
  let sent = 0;
  // 3 s or 6,000 events, whichever comes first (a sanitizer build echoes
  // slower: every echo must arrive within the wait below)
  while (Date.now() < end && sent < 6000) {
    for (let i = 0; i < 200; i++) ws.send(`42["message",${sent++}]`);
    // let the socket drain a little: the flood is bounded by what ws buffers
    while (ws.bufferedAmount > 1 << 20) await sleep(5);
    await sleep(0);
    if (sent % 2000 === 0) await bystandersServed(`during ${sent}`);
  }
  await waitUntil(() => frames.filter((f) => String(f).startsWith('42["message-back"')).length === sent, 20000,
    () => `${frames.filter((f) => String(f).startsWith('42["message-back"')).length} echoes of ${sent}`);
  assert.ok(sent >= 2000, `${sent} events sent`);
  ws.close();
  await bystandersServed("after");
});

/** siogate-wsd's resident set, kB. */
function wsdRss() {
  const d = stack.daemons().find((x) => x.name === "siogate-wsd");
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.pid}/status`, "utf8"));
  return Number(m[1]);
}

/** True when siogate-wsd is a sanitizer build (tests/run's sanitizer pass):
 * ASan keeps freed memory in quarantine, so its RSS bounds nothing. */
function wsdAsan() {
  const d = stack.daemons().find((x) => x.name === "siogate-wsd");
  return process.env.ASAN_OPTIONS !== undefined || /libasan/.test(readFileSync(`/proc/${d.pid}/maps`, "utf8"));
}

test("a WebSocket client that never reads while broadcasts pile up: the others are served; it ends at its heartbeat deadline", SG, async (t) => {
  const { host, port, path } = target({ transport: "websocket" });
  const c = net.connect(port, host);
  c.on("error", () => {});
  let head = "";
  const opened = new Promise((resolve) => {
    const onData = (d) => {
      head += d.toString("latin1");
      if (head.includes("\r\n\r\n")) {
        c.off("data", onData);
        resolve();
      }
    };
    c.on("data", onData);
  });
  await new Promise((r) => c.once("connect", r));
  c.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  await opened;
  assert.match(head, /^HTTP\/1\.1 101/);
  const mine = wsBystander.io.engine.id;
  const open = () =>
    storeQuerySync(stack.db, `SELECT sid FROM sessions WHERE state = 0 AND transport = 'websocket' AND sid <> '${mine}';`, {
      timeout: 10000,
    }).stdout.split("\n").filter(Boolean);
  await waitUntil(() => open().length === 1, 5000, () => `its session in the store: ${open()}`);
  const [sid] = open();
  const rss0 = wsdRss();
  // CONNECT "/" (a masked text frame "40"), then never read again
  const mask = Buffer.from([1, 2, 3, 4]);
  const payload = Buffer.from("40");
  c.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4])]));
  c.pause();
  await sleep(300);
  // 40 broadcasts of 60 KB to every socket: 2.4 MB it does not read
  const siogate = join(BUILDDIR, "gateway", "siogate");
  const big = JSON.stringify("b".repeat(60000));
  // (execFile, not spawnSync: the bystanders live in this process and must
  // answer their pings meanwhile)
  for (let i = 0; i < 40; i++) {
    await execFileP(siogate, ["--conf", join(stack.dir, "siogate.conf"), "emit", "big", big], { timeout: 10000 });
    if (i % 10 === 0) await bystandersServed(`during ${i}`);
  }
  await bystandersServed("after the broadcasts");
  // the heartbeat deadline (5 s) ends it, with "ping timeout"
  const state = () => {
    const r = storeQuerySync(stack.db, `SELECT state, close_reason FROM sessions WHERE sid = '${sid}';`, { timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  await waitUntil(() => state() !== "0|", 15000, () => `its session is still open: ${state()}`);
  assert.match(state(), /^(1\|ping timeout)?$/, "closed (or already deleted) for ping timeout");
  const rss = wsdRss();
  c.destroy();
  await bystandersServed("after it ended");
  t.diagnostic(`siogate-wsd RSS ${rss0} kB before, ${rss} kB at its end`);
});

test("a WebSocket client sending acked events without reading, its pongs sent blind: siogate-wsd's memory stays bounded; closed by max_queued_packets; the others are served", SG, async (t) => {
  // straight to siogate-wsd (through the web server, the web server would
  // buffer what it leaves unread)
  const ws = await rawWsSession(stack, { unix: wsdSocket(stack) });
  ws.c.pause();
  const rss0 = wsdRss();
  let rssMax = rss0;
  // the heartbeat cannot end it: it pongs every 500 ms without reading
  // the pings (Engine.IO lets a pong come unasked)
  const ponger = setInterval(() => ws.send("3"), 500);
  try {
    // 100 KB acked events until their answers wait in the store: up to
    // 600 (60 MB), which siogate-wsd would otherwise buffer for it
    const big = JSON.stringify("a".repeat(100000));
    let sent = 0;
    while ((await queuedAsync(ws.sid)) === 0) {
      assert.ok(sent < 600, `${sent} answers of 100 KB unread and none waits in the store; siogate-wsd RSS ${rss0} -> ${wsdRss()} kB`);
      for (let i = 0; i < 10; i++) ws.send(`42${sent++}["message-with-ack",${big}]`);
      await sleep(20);
      rssMax = Math.max(rssMax, wsdRss());
    }
    // small ones then, until the queue passes the limit (1,000 + some)
    for (let i = 0; i < LIMIT + 200; i++) {
      ws.send(`42${sent++}["message-with-ack",${i}]`);
      if (i % 100 === 0) {
        await sleep(10);
        rssMax = Math.max(rssMax, wsdRss());
      }
      if (i === 500) await bystandersServed(`during, ${sent} sent`);
    }
    await waitUntil(async () => (await stateOf(ws.sid)) !== "0|", 15000,
      async () => `still open, ${await queuedAsync(ws.sid)} queued for it`);
    rssMax = Math.max(rssMax, wsdRss());
    assert.equal(await stateOf(ws.sid), "1|transport error");
    assert.equal(await queuedAsync(ws.sid), 0);
    await bystandersServed("after it was closed");
    t.diagnostic(`${sent} acked events sent unread; siogate-wsd RSS ${rss0} kB before, at most ${rssMax} kB`);
    // its output (1 MiB) and SQLite's page cache, never the megabytes it left unread
    if (!wsdAsan()) assert.ok(rssMax - rss0 < 16 * 1024, `siogate-wsd RSS ${rss0} -> ${rssMax} kB`);
  } finally {
    clearInterval(ponger);
    ws.c.destroy();
  }
});

test("a WebSocket client that stops reading for a while, then reads: every answer to its acked events arrives, in order", SG, async () => {
  const ws = await rawWsSession(stack, { unix: wsdSocket(stack) });
  ws.c.pause();
  // 4 MB of answers: more than siogate-wsd's 1 MiB and the kernel's buffers
  const big = JSON.stringify("r".repeat(100000));
  for (let i = 0; i < 40; i++) ws.send(`42${i}["message-with-ack",${big}]`);
  await waitUntil(async () => (await queuedAsync(ws.sid)) > 0, 10000, "answers waiting in the store");
  ws.c.resume();
  const acks = () => ws.texts().filter((x) => /^43\d+\[/.test(x));
  await waitUntil(() => acks().length === 40, 20000, () => `${acks().length} acks of 40`);
  assert.deepEqual(acks().map((x) => Number(/^43(\d+)/.exec(x)[1])), [...Array(40).keys()]);
  assert.equal(await stateOf(ws.sid), "0|");
  ws.c.destroy();
  await bystandersServed("after");
});
