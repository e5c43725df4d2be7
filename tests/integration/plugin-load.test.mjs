// Loading plugins: siogate-fcgi started directly (--listen unix:...) with a
// conf naming good and bad plugins. A bad plugin stops the program before it
// serves anything: exit status non-zero and one clear line on stderr naming
// the file and what is wrong. Good plugins load side by side (RTLD_LOCAL:
// each exports the same two symbols).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDDIR, IS_REFERENCE, SRCDIR, pluginPath, testPluginPath } from "./lib/stack.mjs";
import { newStore } from "./lib/store.mjs";

// The host's ABI, major.minor, as gateway/plugin.h defines it
const header = readFileSync(join(SRCDIR, "gateway", "plugin.h"), "utf8");
const HOST_ABI = ["MAJOR", "MINOR"].map((k) => header.match(new RegExp(`#define SG_ABI_${k} (\\d+)`))[1]).join(".");

const skip = IS_REFERENCE ? "siogate only (loads plugins)" : false;
const T = { timeout: 60000, skip };

const dirs = [];
after(() => {
  if (!process.env.SG_KEEP_TMP) for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs siogate-fcgi with plugins; when it says "ready", stops it with
 * SIGTERM. Resolves with {code, signal, stderr, ready}.
 */
async function runFcgi(plugins, opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sg-load-"));
  dirs.push(dir);
  const store = await newStore(dir); // SQLite in dir, or a database of its own (SG_STORE=pg)
  try {
    return await runFcgiOn(dir, store, plugins, opts);
  } finally {
    await store.drop();
  }
}

function runFcgiOn(dir, store, plugins, { env = {}, ms = 20000 } = {}) {
  const conf = join(dir, "siogate.conf");
  const lines = Object.entries(store.conf).map(([k, v]) => `${k} = ${v}`);
  writeFileSync(conf, [...lines, ...plugins.map((p) => `plugin = ${p}`)].join("\n") + "\n");
  const child = spawn(join(BUILDDIR, "gateway", "siogate-fcgi"), ["--conf", conf, "--listen", `unix:${join(dir, "s.sock")}`], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  let ready = false;
  child.stdout.resume();
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
    if (!ready && /info: ready: /.test(stderr)) {
      ready = true;
      child.kill("SIGTERM");
    }
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`siogate-fcgi neither failed nor got ready within ${ms} ms; stderr:\n${stderr}`));
    }, ms);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ready });
    });
  });
}

/** Runs with a bad plugin: asserts the failure and returns the stderr line about it. */
async function refused(plugins, file) {
  const r = await runFcgi(plugins);
  assert.equal(r.ready, false, `it must not start; stderr:\n${r.stderr}`);
  assert.notEqual(r.code, 0, `exit status non-zero; stderr:\n${r.stderr}`);
  assert.equal(r.signal, null, "exited, not killed");
  const line = r.stderr.split("\n").find((l) => l.includes(file) && /error/.test(l));
  assert.ok(line, `a line naming ${file}; stderr:\n${r.stderr}`);
  return line;
}

test("the example plugins load together and the program stops cleanly", T, async () => {
  const plugins = ["echo", "skeleton", "chat", "auth"].map(pluginPath);
  const r = await runFcgi([...plugins, testPluginPath("features")], { env: { SIOGATE_AUTH_TOKENS: "u:t" } });
  assert.ok(r.ready, r.stderr);
  for (const p of [...plugins, testPluginPath("features")])
    assert.ok(r.stderr.includes(`plugin ${p} loaded`), `"plugin ${p} loaded" in:\n${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
});

test("wrong ABI major: refused, naming the file and both versions", T, async () => {
  const f = testPluginPath("wrong_abi");
  const line = await refused([f], f);
  assert.match(line, /ABI 2\.0/, line);
  assert.ok(line.endsWith(`provides ${HOST_ABI}`), line);
});

test("newer ABI minor than the host's: refused, naming both versions", T, async () => {
  const f = testPluginPath("newer_minor");
  const line = await refused([f], f);
  assert.match(line, /ABI 1\.99/, line);
  assert.ok(line.endsWith(`provides ${HOST_ABI}`), line);
});

test("no sg_plugin_abi (built without SG_PLUGIN_DECLARE): refused", T, async () => {
  const f = testPluginPath("no_abi");
  assert.match(await refused([f], f), /sg_plugin_abi/);
});

test("no sg_plugin_init: refused, naming the entry point", T, async () => {
  const f = testPluginPath("no_init");
  assert.match(await refused([f], f), /sg_plugin_init/);
});

test("sg_plugin_init failing: refused", T, async () => {
  const f = testPluginPath("fail_init");
  const line = await refused([f], f);
  assert.match(line, /sg_plugin_init failed/);
});

test("an undefined symbol: refused at start, naming the symbol", T, async () => {
  const f = testPluginPath("undefined_symbol");
  assert.match(await refused([f], f), /sg_no_such_function/);
});

test("a missing file: refused", T, async () => {
  const f = join(tmpdir(), "siogate-no-such-plugin.so");
  assert.match(await refused([f], f), /cannot load|No such file/);
});

test("a file that is not a shared object: refused", T, async () => {
  const dir = mkdtempSync(join(tmpdir(), "sg-load-"));
  dirs.push(dir);
  const f = join(dir, "text.so");
  writeFileSync(f, "not an ELF file\n");
  assert.match(await refused([f], f), /cannot load/);
});

test("one bad plugin among good ones: nothing starts", T, async () => {
  const bad = testPluginPath("wrong_abi");
  const r = await runFcgi([pluginPath("echo"), bad, pluginPath("skeleton")]);
  assert.equal(r.ready, false);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(bad), r.stderr);
  assert.ok(!r.stderr.includes(`plugin ${pluginPath("skeleton")} loaded`), "later plugins are not loaded");
});

test("auth without SIOGATE_AUTH_TOKENS: refused, saying why", T, async () => {
  const f = pluginPath("auth");
  const saved = process.env.SIOGATE_AUTH_TOKENS;
  delete process.env.SIOGATE_AUTH_TOKENS;
  try {
    const r = await runFcgi([f]);
    assert.equal(r.ready, false);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SIOGATE_AUTH_TOKENS is not set/);
    assert.match(r.stderr, new RegExp(`plugin ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: sg_plugin_init failed`));
  } finally {
    if (saved !== undefined) process.env.SIOGATE_AUTH_TOKENS = saved;
  }
});
