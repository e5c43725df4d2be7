// A slow handler done right (plugin ABI 1.2, docs/plugins.md "Slow work"):
// the handler defers its event and returns, a thread of the plugin does the
// slow part and answers with host->finish. Meanwhile every other client of
// the same siogate-wsd and siogate-fcgi is served (tests/plugins/faults.c,
// event "slow" [ms]).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { IS_REFERENCE, pluginPath, startStack, testPluginPath } from "./lib/stack.mjs";
import { closeAllClients, closeClient, connectClient, emitAck } from "./lib/client.mjs";
import { sleep, waitUntil as until } from "./lib/util.mjs";

const skip = IS_REFERENCE ? "siogate only (plugins)" : false;
const T = { timeout: 60000, skip };
const SLOW_MS = 3000;

const stacks = new Map();
after(async () => {
  closeAllClients();
  for (const s of stacks.values()) await s.stop();
});
async function theStack(conf = {}) {
  // one siogate-fcgi and one siogate-wsd: everybody shares them
  const key = JSON.stringify(conf);
  if (!stacks.has(key))
    stacks.set(key, await startStack({ fcgi: 1, wsd: 1, conf: { plugin: [pluginPath("echo"), testPluginPath("faults")], ...conf } }));
  return stacks.get(key);
}

/** While a deferred "slow" of `slowOn` is pending, 20 acked echoes of each
 * of the others complete; then the slow ack arrives. */
async function servedMeanwhile(slowOn, others) {
  let answered = false;
  const slow = emitAck(slowOn, "slow", [SLOW_MS], SLOW_MS + 15000).then((r) => {
    answered = true;
    return r;
  });
  for (let i = 0; i < 20; i++)
    await Promise.all(others.map((o, k) => emitAck(o, "message-with-ack", [`${k}-${i}`]).then((r) => assert.deepEqual(r, [`${k}-${i}`]))));
  assert.equal(answered, false, `the others' 20 echoes each finished before the ${SLOW_MS} ms work`);
  assert.deepEqual(await slow, ["done", SLOW_MS], "the deferred event is acked by the plugin's thread");
}

for (const [what, opts] of [
  ["a WebSocket", { transports: ["websocket"] }],
  ["long-polling (the ack comes through the held GET)", {}],
]) {
  test(`a deferred event on ${what}: the other clients of the same siogate-wsd and siogate-fcgi are served meanwhile`, T, async () => {
    const s = await theStack();
    const { socket: a } = await connectClient(s, "/", opts);
    const { socket: b } = await connectClient(s, "/", { transports: ["websocket"] });
    const { socket: p } = await connectClient(s, "/");
    try {
      await servedMeanwhile(a, [b, p]);
    } finally {
      for (const c of [a, b, p]) closeClient(c);
    }
  });
}

for (const [what, conf] of [
  ["", {}],
  [" (recovery on: its socket is kept for the window, but the ack is not)", { recovery_window: 5000 }],
]) {
  test(`a deferred event whose client left: finish says the socket is gone, nothing breaks${what}`, T, async () => {
    const s = await theStack(conf);
    const { socket: a } = await connectClient(s, "/", { transports: ["websocket"] });
    a.timeout(10000).emit("slow", 300, () => {});
    await sleep(50); // the event is in
    a.io.engine.close(); // the connection drops: "transport close", recoverable
    closeClient(a);
    await until(() => /plugin \S*faults\.so: finish: the socket is gone/.test(s.stderr()), 5000,
      () => `"finish: the socket is gone" in the log:\n${s.stderr().slice(-2000)}`);
    // a fresh client is served (an acked echo: acks carry no offset)
    const { socket: f } = await connectClient(s, "/");
    assert.deepEqual(await emitAck(f, "message-with-ack", ["fresh"]), ["fresh"]);
    closeClient(f);
    s.assertAlive();
  });
}

test("finish given arguments that cannot be sent fails alone: logged, no ack, the socket carries on", T, async () => {
  // faults.c's "slow" [ms, "unsendable"] finishes with a string that is
  // not UTF-8 text (json_stringn_nocheck): the host refuses it before
  // anything is written, as it does emit's and ack's (host.c, args_bad)
  const s = await theStack();
  const { socket: a } = await connectClient(s, "/", { transports: ["websocket"] });
  try {
    let acked = false;
    a.timeout(60000).emit("slow", 100, "unsendable", () => (acked = true));
    await until(() => /plugin \S*faults\.so: finish: the arguments hold a string that is not UTF-8 text/.test(s.stderr()), 5000,
      () => `finish's refusal in the log:\n${s.stderr().slice(-2000)}`);
    assert.deepEqual(await emitAck(a, "message-with-ack", ["after"]), ["after"], "the same socket is served");
    assert.deepEqual(await emitAck(a, "slow", [50]), ["done", 50], "and its next deferred event acked");
    assert.equal(acked, false, "no ack for the refused finish");
    s.assertAlive();
  } finally {
    closeClient(a);
  }
});
