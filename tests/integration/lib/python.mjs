// python-socketio (Debian's python3-socketio, run by /usr/bin/python3, not
// whatever python3 is first on PATH) as a test client.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const PY = "/usr/bin/python3";

/** false when python-socketio can run here, else why not (a skip reason). */
export function pythonSkip() {
  if (!existsSync(PY) || spawnSync(PY, ["-c", "import socketio, websocket, requests"]).status !== 0)
    return "python3-socketio (with python3-websocket, python3-requests) is not installed";
  return false;
}

/**
 * The echo round trip with python-socketio: connects to url (path, one
 * transport), gets "auth", emits "message" with a binary argument, calls
 * "message-with-ack". Resolves with {code, out (parsed JSON or null), err}.
 * Bounded: the process is killed after 30 s.
 */
export function pythonEcho(url, path, transport) {
  const script = `
import socketio, sys, json
sio = socketio.Client(reconnection=False)
out = {}
done = []
@sio.on("auth")
def on_auth(a): out["auth"] = a
@sio.on("message-back")
def on_back(*a):
    out["back"] = list(a)
    done.append(1)
sio.connect(sys.argv[1], socketio_path=sys.argv[2], transports=[sys.argv[3]],
            auth={"py": sys.argv[3]}, wait_timeout=10)
out["transport"] = sio.transport()
sio.emit("message", ("from python", 3, b"\\x00\\x01"))
out["ack"] = sio.call("message-with-ack", "py ack", timeout=10)
for _ in range(100):
    if done: break
    sio.sleep(0.1)
sio.disconnect()
out["back"][2] = list(out["back"][2])
print(json.dumps(out))
`;
  return new Promise((resolve) => {
    const p = spawn(PY, ["-c", script, url, path, transport], { stdio: ["ignore", "pipe", "pipe"] });
    let o = "",
      e = "";
    p.stdout.on("data", (x) => (o += x));
    p.stderr.on("data", (x) => (e += x));
    const timer = setTimeout(() => p.kill("SIGKILL"), 30000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      let out = null;
      try {
        out = JSON.parse(o);
      } catch {}
      resolve({ code, out, err: e });
    });
  });
}
