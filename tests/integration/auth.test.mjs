// The auth example plugin (plugins/auth.c) through the real stack: tokens
// from SIOGATE_AUTH_TOKENS, connect_error "unauthorized" with reason and
// hint, the user in socket data, "welcome".

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startStack, pluginPath, IS_REFERENCE } from "./lib/stack.mjs";
import { makeClient, whenConnected, closeClient, closeAllClients, emitAck, nextOn, connectClient } from "./lib/client.mjs";
import { connectError } from "./lib/features.mjs";

const skip = IS_REFERENCE ? "siogate only (example plugin)" : false;
const T = { timeout: 60000, skip };

let stack;
before(async () => {
  if (skip) return;
  stack = await startStack({
    fcgi: 2,
    conf: { plugin: [pluginPath("echo"), pluginPath("auth")] },
    env: { SIOGATE_AUTH_TOKENS: "alice:secret-a, bob:secret-b ,,bare-token" },
  });
});
after(async () => {
  closeAllClients();
  if (stack) await stack.stop();
});

async function refused(auth) {
  const s = makeClient(stack, "/private", auth === undefined ? {} : { auth });
  try {
    return await connectError(s);
  } finally {
    closeClient(s);
  }
}

test("no token: connect_error unauthorized, reason \"missing token\" and a hint", T, async () => {
  for (const auth of [undefined, {}, { token: 42 }, { tok: "secret-a" }]) {
    const err = await refused(auth);
    assert.equal(err.message, "unauthorized");
    assert.equal(err.data.reason, "missing token", JSON.stringify(auth));
    assert.equal(typeof err.data.hint, "string");
    assert.ok(err.data.hint.length > 0);
  }
});

test("a wrong token: reason \"unknown token\"", T, async () => {
  for (const token of ["nope", "", "secret-", "secret-a-and-more", "SECRET-A", "alice:secret-a", "alice"]) {
    const err = await refused({ token });
    assert.equal(err.message, "unauthorized");
    assert.equal(err.data.reason, "unknown token", JSON.stringify(token));
    assert.equal(typeof err.data.hint, "string");
  }
});

test("a good token: \"welcome\" with the user; the user is in socket data", T, async () => {
  for (const [token, user] of [["secret-a", "alice"], ["secret-b", "bob"], ["bare-token", "token-3"]]) {
    const s = makeClient(stack, "/private", { auth: { token } });
    const welcome = nextOn(s, "welcome", 10000);
    try {
      await whenConnected(s);
      assert.deepEqual(await welcome, [{ user, id: s.id }]);
      assert.deepEqual(await emitAck(s, "whoami", []), [{ user }]);
    } finally {
      closeClient(s);
    }
  }
});

test("other namespaces need no token", T, async () => {
  const { socket, auth } = await connectClient(stack, "/");
  try {
    assert.deepEqual(await auth, {});
  } finally {
    closeClient(socket);
  }
});
