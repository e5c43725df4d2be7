// A WebSocket client on a bare TCP connection, for clients no library
// would be: one that stops reading (net.Socket.pause(): the kernel's
// buffers fill and the server's writes block) while it goes on sending.
// Engine.IO v4 over the "websocket" transport, connected to "/".

import net from "node:net";
import { readFileSync } from "node:fs";
import { eioUrl } from "./eio.mjs";
import { waitUntil } from "./util.mjs";

/** One masked client frame (RFC 6455 5.3) of opcode op carrying payload. */
function clientFrame(op, payload) {
  const mask = Buffer.from([0x5a, 0x17, 0xc3, 0x08]);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n])
    : n < 65536 ? Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 0xff])
    : (() => {
      const h = Buffer.alloc(10);
      h[0] = 0x80 | op;
      h[1] = 0x80 | 127;
      h.writeBigUInt64BE(BigInt(n), 2);
      return h;
    })();
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

/**
 * Opens a WebSocket session on stack (through its web server, or straight
 * to the siogate-wsd listening on the unix socket `unix`: no web server
 * buffering between, so siogate-wsd's writes block as soon as the kernel's
 * buffers are full) and connects it to "/". Resolves with
 * { c (the net.Socket), sid, socketId, frames, texts(), send(text), closed(),
 * ended() }: frames collects the server's frames ({op, data}) as they are
 * read; texts() the text ones as strings; closed() is the status code of a
 * close frame received, or null; ended() whether the connection ended.
 */
export async function rawWsSession(stack, { unix } = {}) {
  const u = new URL(eioUrl(stack, { transport: "websocket" }));
  const c = unix ? net.connect({ path: unix }) : net.connect(Number(u.port), u.hostname);
  let end = false;
  c.on("error", () => {});
  c.on("close", () => (end = true));
  await new Promise((resolve, reject) => {
    c.once("connect", resolve);
    c.once("error", reject);
  });
  c.write(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\n` +
      "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  const frames = [];
  let buf = Buffer.alloc(0);
  let head = null;
  c.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    if (head === null) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      head = buf.subarray(0, end).toString("latin1");
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      frames.push({ op: buf[0] & 0x0f, data: Buffer.from(buf.subarray(at, at + len)) });
      buf = buf.subarray(at + len);
    }
  });
  const texts = () => frames.filter((f) => f.op === 1).map((f) => f.data.toString());
  const send = (text) => c.write(clientFrame(1, Buffer.from(text)));
  const closed = () => {
    const f = frames.find((x) => x.op === 8);
    return f ? (f.data.length >= 2 ? f.data.readUInt16BE(0) : 1005) : null;
  };
  await waitUntil(() => texts().some((t) => t.startsWith("0{")), 5000, () => `the open packet (${head})`);
  const sid = JSON.parse(texts().find((t) => t.startsWith("0{")).slice(1)).sid;
  send("40");
  await waitUntil(() => texts().some((t) => t.startsWith("40{")), 5000, "the CONNECT reply");
  const socketId = JSON.parse(texts().find((t) => t.startsWith("40{")).slice(2)).sid;
  return { c, sid, socketId, frames, texts, send, closed, ended: () => end };
}

/** The unix socket the stack's (first) siogate-wsd listens on, from its command line. */
export function wsdSocket(stack) {
  const d = stack.daemons().find((x) => x.name === "siogate-wsd");
  const argv = readFileSync(`/proc/${d.pid}/cmdline`, "utf8").split("\0");
  const listen = argv[argv.indexOf("--listen") + 1] || "";
  if (!listen.startsWith("unix:")) throw new Error(`siogate-wsd listens on ${listen}`);
  return listen.slice(5);
}
