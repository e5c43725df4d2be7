// options.mjs - what the reference servers share (reference/server.mjs for
// the integration tests, tests/bench/reference.mjs for the benchmarks):
// their command line (--port PORT [--host 127.0.0.1] [--conf FILE]) and
// the socket.io Server options read from siogate's conf format ("key =
// value" lines, '#' comments): ping_interval, ping_timeout,
// connect_timeout (ms), max_payload (bytes), path, cors_origin, the
// cookie keys and recovery_window (connectionStateRecovery's
// maxDisconnectionDuration, middlewares skipped; 0 or absent: off); other keys (db, plugin, the limits) are accepted and ignored.

import { readFileSync } from "node:fs";

function parseArgs(argv) {
  const args = { host: "127.0.0.1", port: 0, conf: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === "--port") args.port = Number(next());
    else if (a === "--host") args.host = next();
    else if (a === "--conf") args.conf = next();
    else throw new Error(`unknown argument: ${a}`);
  }
  return args;
}

function parseConf(text) {
  const conf = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`bad conf line: ${raw}`);
    conf[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return conf;
}

/** {args: {host, port, conf}, opts: socket.io Server options} for argv. */
export function referenceOptions(argv) {
  const args = parseArgs(argv);
  const conf = args.conf ? parseConf(readFileSync(args.conf, "utf8")) : {};
  const num = (key, dflt) => (conf[key] !== undefined ? Number(conf[key]) : dflt);
  const opts = {
    path: conf.path || "/socket.io/",
    pingInterval: num("ping_interval", 25000),
    pingTimeout: num("ping_timeout", 20000),
    connectTimeout: num("connect_timeout", 45000),
    maxHttpBufferSize: num("max_payload", 1e6),
    serveClient: false,
  };
  // siogate's recovery_window: connection state recovery, as the
  // reference's defaults but for the duration
  if (num("recovery_window", 0) > 0)
    opts.connectionStateRecovery = {
      maxDisconnectionDuration: num("recovery_window", 0),
      skipMiddlewares: true,
    };
  // siogate's cors_origin: "*" reflects any origin, else a space-separated
  // list of origins; with credentials, as socket.io deployments usually do
  if (conf.cors_origin)
    opts.cors = {
      origin: conf.cors_origin === "*" ? true : conf.cors_origin.split(/\s+/),
      credentials: true,
    };
  // siogate's cookie keys: engine.io's cookie option (off without `cookie`)
  if (conf.cookie) {
    const bool = (k, dflt) => (conf[k] === undefined ? dflt : /^(yes|true|on|1)$/i.test(conf[k]));
    const ss = conf.cookie_samesite;
    opts.cookie = {
      name: conf.cookie,
      path: conf.cookie_path || "/",
      httpOnly: bool("cookie_httponly", true),
      secure: bool("cookie_secure", false),
      sameSite: ss === undefined ? "lax" : /^off$/i.test(ss) ? false : ss.toLowerCase(),
    };
  }
  return { args, opts };
}
