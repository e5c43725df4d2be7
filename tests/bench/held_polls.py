#!/usr/bin/python3
"""held_polls.py - benchmark: memory and idle CPU of siogate-fcgi holding
N concurrent long-polls behind a real web server.

    tests/bench/held_polls.py [--server lighttpd] [--sessions 1000] [--seconds 10]

Starts contrib/stack (one siogate-fcgi, plugin echo) on a free loopback
port, opens N Engine.IO sessions, each with one GET held (parked) by the
gateway, then samples the gateway's RSS and CPU time over --seconds.
Prints one line of numbers. Bounded: every step has a timeout; everything
started is stopped by pid at the end."""
import argparse, asyncio, os, re, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SG_BUILDDIR", SRC)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def hold_one(port, path, held, stop):
    # the handshake over HTTP/1.0, read to EOF: whatever the server's
    # framing (Apache's mod_proxy_fcgi answers chunked)
    r0, w0 = await asyncio.open_connection("127.0.0.1", port)
    w0.write(f"GET {path}?EIO=4&transport=polling HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    body = (await r0.read()).split(b"\r\n\r\n", 1)[1]
    w0.close()
    sid = re.match(rb'0\{"sid":"([^"]+)"', body).group(1).decode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    held.append(sid)
    await stop.wait()
    writer.close()


async def run(port, path, n, seconds, fcgi_pid):
    stop = asyncio.Event()
    held = []
    tasks = []
    t0 = time.monotonic()
    for i in range(n):
        tasks.append(asyncio.create_task(hold_one(port, path, held, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    while len(held) < n and time.monotonic() - t0 < 60:
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # let the last GETs park
    rss0 = rss_kb(fcgi_pid)
    c0, w0 = cpu_ticks(fcgi_pid), time.monotonic()
    await asyncio.sleep(seconds)
    c1, w1 = cpu_ticks(fcgi_pid), time.monotonic()
    rss1 = rss_kb(fcgi_pid)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = 100.0 * (c1 - c0) / hz / (w1 - w0)
    print(f"held polls: {len(held)}/{n} sessions  siogate-fcgi RSS {max(rss0, rss1)/1024:.1f} MB"
          f" ({threads(fcgi_pid)} threads)  CPU {cpu:.2f} % over {w1 - w0:.0f} s idle")
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="lighttpd")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    n = max(1, min(a.sessions, 10000))
    tmp = tempfile.mkdtemp(prefix="sg-bench-")
    conf = os.path.join(tmp, "siogate.conf")
    with open(conf, "w") as f:
        f.write(f"db = {tmp}/siogate.db\nplugin = {BUILD}/plugins/echo.so\n")
    port = free_port()
    stack = subprocess.Popen([f"{SRC}/contrib/stack", "--server", a.server, "--port", str(port),
                              "--conf", conf, "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        line = stack.stdout.readline().strip()
        if not line.startswith("http://"):
            sys.exit("held_polls: the stack did not start")
        fcgi = [p for p in children(stack.pid) if comm(p).startswith("siogate-fcgi")]
        if len(fcgi) != 1:
            sys.exit("held_polls: cannot find the siogate-fcgi process")
        asyncio.run(run(port, "/socket.io/", n, a.seconds, fcgi[0]))
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stack.kill()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
