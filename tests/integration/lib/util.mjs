// Small promise helpers: every await in the tests goes through one of these,
// so that nothing can hang for ever.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves/rejects like `promise`, or rejects after `ms` with `label`. */
export function withTimeout(promise, ms, label = "operation") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Collects `count` occurrences of `event` (arrays of arguments, in order of
 * arrival); rejects after `ms` with how many arrived.
 */
export function collectEvents(emitter, event, count, ms, label) {
  const got = [];
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => {
      got.push(args);
      if (got.length === count) resolve(got);
    };
    emitter.on(event, handler);
  });
  const what = label || `${count} x "${event}"`;
  return withTimeout(p, ms, what)
    .catch((e) => {
      e.message += ` (got ${got.length}: ${JSON.stringify(got).slice(0, 300)})`;
      throw e;
    })
    .finally(() => emitter.off(event, handler));
}

/** Node Buffer view of whatever binary type a client handed us. */
export function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  throw new Error(`not binary: ${Object.prototype.toString.call(x)}`);
}

/**
 * Polls pred() every 50 ms until it returns something truthy (resolved
 * with that), failing after ms with `what` (a string, or a function that
 * makes one then).
 */
export async function waitUntil(pred, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${typeof what === "function" ? what() : what}`);
    await sleep(50);
  }
}

/** Resolves once an HTTP GET of url gets an answer at all (any status),
 * within ms; alive() is called before each try, to throw when what
 * should answer has died. */
export async function waitAnswering(url, ms, alive = () => {}) {
  await waitUntil(
    async () => {
      alive();
      try {
        await fetch(url, { signal: AbortSignal.timeout(1000) });
        return true;
      } catch {
        return false;
      }
    },
    ms,
    `${url} answers`,
  );
}
