// Cross-origin requests: cors_origin unset (same-origin only), a list of
// origins, and "*" (any origin, reflected, with credentials).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { startStack } from "./lib/stack.mjs";
import { request, eioUrl } from "./lib/eio.mjs";

const T = { timeout: 60000 };
const stacks = [];
after(async () => {
  for (const s of stacks) await s.stop();
});
async function stackWith(conf) {
  const s = await startStack({ fcgi: 1, conf });
  stacks.push(s);
  return s;
}

const A = "http://a.example";
const B = "http://b.example:8080";

test("cors unset: no CORS headers, a preflight is refused", T, async () => {
  const s = await stackWith({});
  const r = await request(eioUrl(s), { headers: { Origin: A } });
  assert.equal(r.status, 200); // same-origin policy is the browser's to apply
  assert.equal(r.headers.get("access-control-allow-origin"), null);
  const pre = await request(eioUrl(s), {
    method: "OPTIONS",
    headers: { Origin: A, "Access-Control-Request-Method": "POST" },
  });
  assert.notEqual(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), null);
});

test("cors list: listed origins reflected with credentials, others not", T, async () => {
  const s = await stackWith({ cors_origin: `${A} ${B}` });
  for (const o of [A, B]) {
    const r = await request(eioUrl(s), { headers: { Origin: o } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("access-control-allow-origin"), o);
    assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  }
  const evil = await request(eioUrl(s), { headers: { Origin: "http://evil.example" } });
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  const pre = await request(eioUrl(s), {
    method: "OPTIONS",
    headers: {
      Origin: A,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type",
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), A);
  assert.match(pre.headers.get("access-control-allow-methods") || "", /POST/);
  assert.match(pre.headers.get("access-control-allow-headers") || "", /content-type/i);
});

test("cors *: any origin reflected", T, async () => {
  const s = await stackWith({ cors_origin: "*" });
  const r = await request(eioUrl(s), { headers: { Origin: "http://anything.example" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), "http://anything.example");
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
});
