#!/usr/bin/env python3
"""The slow-client test: N idle half-open connections against the real server while a client
measures /healthz and the window inbox, and the server's open descriptors and memory are sampled.

Standard library only. It starts `pledgeflow serve --demo` (BIN, default target/debug/pledgeflow)
on a fresh SQLite file with the default edge limits, then runs three phases of --seconds each:

  quiet     no attackers (the baseline);
  one-addr  N attackers from 127.0.0.1: each connects, sends half a request line or nothing,
            waits until the server drops it, and connects again at once;
  spread    the same N attackers spread over --addresses source addresses (127.0.1.x), enough
            to fill the total connection cap.

The measuring client comes from 127.0.0.2, in a process of its own started 1.5 s before the
attackers. Each second it asks /healthz and the inbox (`workflowInstances`, 20 waiting deferrals
with deadlines and timers) on one kept-alive connection (reopened if the server closes it), and
beside it a new visitor asks /healthz on a fresh connection (refused with 503 while the cap is
full). It prints one table row per
phase: latencies (p50/p99/max), fresh-connection outcomes, attacker connections admitted and
refused, and the server's peak descriptors (/proc/PID/fd) and RSS (/proc/PID/status).
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

INBOX = ('query { workflowInstances(filter: {definition: "material-deferral", state: "awaiting_materials"}, first: 20) '
         '{ totalCount edges { node { id state deadlines { name at } timers { name dueAt status } } } } }')


class Stats:
    def __init__(self):
        self.healthz, self.inbox, self.fresh_ms = [], [], []
        self.fresh = {"ok": 0, "refused": 0, "failed": 0}
        self.attack = {"admitted": 0, "refused": 0, "failed": 0}
        self.fds, self.rss = [], []


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


def request(method, path, body=None, token=None, close=False):
    head = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    if token:
        head.append(f"authorization: Bearer {token}")
    if body is not None:
        head += ["content-type: application/json", f"content-length: {len(body)}"]
    if close:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def open_from(source, port):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def attacker(source, port, stats, stop):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(open_from(source, port), 5)
        except Exception:
            stats.attack["failed"] += 1
            await asyncio.sleep(0.05)
            continue
        try:
            if random.random() < 0.5:
                writer.write(b"GET /graphql HT")  # half a request line
            first = await reader.read(64)
            if first.startswith(b"HTTP/1.1 503"):
                stats.attack["refused"] += 1
                writer.close()
                await asyncio.sleep(1)  # then try again
                continue
            else:
                stats.attack["admitted"] += 1
                while first:  # held until the server drops it
                    first = await reader.read(64)
        except Exception:
            stats.attack["admitted"] += 1
        finally:
            writer.close()


async def measurer(port, token, stats, stop):
    conn = None
    inbox = json.dumps({"query": INBOX}).encode()
    while not stop.is_set():
        tick = time.monotonic()
        for kind in ("healthz", "inbox"):
            try:
                if conn is None:
                    conn = await asyncio.wait_for(open_from("127.0.0.2", port), 5)
                reader, writer = conn
                started = time.monotonic()
                writer.write(request("GET", "/healthz") if kind == "healthz" else request("POST", "/graphql", inbox, token))
                status, body = await asyncio.wait_for(read_response(reader), 10)
                ms = (time.monotonic() - started) * 1000
                if status == 200:
                    getattr(stats, kind).append(ms)
                else:
                    conn = None
            except Exception:
                conn = None
        await asyncio.sleep(max(0, 1 - (time.monotonic() - tick)))


async def visitor(port, stats, stop):
    """A new visitor each second on a fresh connection, beside the kept-alive client (a connect
    stuck in a flooded SYN queue must not hold the other back)."""
    while not stop.is_set():
        tick = time.monotonic()
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(open_from("127.0.0.2", port), 5)
            writer.write(request("GET", "/healthz", close=True))
            status, _ = await asyncio.wait_for(read_response(reader), 10)
            stats.fresh["ok" if status == 200 else "refused"] += 1
            if status == 200:
                stats.fresh_ms.append((time.monotonic() - started) * 1000)
            writer.close()
        except Exception:
            stats.fresh["failed"] += 1
        await asyncio.sleep(max(0, 1 - (time.monotonic() - tick)))


async def sampler(pid, stats, stop):
    while not stop.is_set():
        try:
            stats.fds.append(len(os.listdir(f"/proc/{pid}/fd")))
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        stats.rss.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            pass
        await asyncio.sleep(0.5)


async def measure_alone(port, token, seconds):
    """The measuring client, run in a process of its own so that the attackers' event loop
    cannot delay it; prints its figures as JSON."""
    stats, stop = Stats(), asyncio.Event()
    tasks = [asyncio.create_task(measurer(port, token, stats, stop)), asyncio.create_task(visitor(port, stats, stop))]
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"healthz": stats.healthz, "inbox": stats.inbox, "fresh": stats.fresh, "fresh_ms": stats.fresh_ms}))


async def phase(name, sources, n, seconds, port, pid, token):
    stats, stop = Stats(), asyncio.Event()
    tasks = [asyncio.create_task(sampler(pid, stats, stop))]
    # The measuring client connects first (a user already there when the flood begins), then
    # the attackers come; it measures for `seconds` from its start.
    measuring = await asyncio.create_subprocess_exec(
        sys.executable, os.path.abspath(__file__), "--measure", str(port), "--token", token, "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.5)
    for i in range(n):
        tasks.append(asyncio.create_task(attacker(sources[i % len(sources)], port, stats, stop)))
        if i % 200 == 199:
            await asyncio.sleep(0.01)  # open them over a moment, not in one burst of SYNs
    out, _ = await measuring.communicate()
    measured = json.loads(out)
    stats.healthz, stats.inbox, stats.fresh, stats.fresh_ms = measured["healthz"], measured["inbox"], measured["fresh"], measured["fresh_ms"]
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return name, stats


def row(name, n, s):
    f = lambda v: f"{v:.1f}"
    return (f"| {name} | {n} | {f(pct(s.healthz, 50))} / {f(pct(s.healthz, 99))} / {f(max(s.healthz, default=float('nan')))} "
            f"| {f(pct(s.inbox, 50))} / {f(pct(s.inbox, 99))} ({len(s.inbox)}) "
            f"| {s.fresh['ok']} ok, {s.fresh['refused']} 503, {s.fresh['failed']} failed "
            f"| {s.attack['admitted']:,} / {s.attack['refused']:,} "
            f"| {max(s.fds, default=0)} | {max(s.rss, default=0):.0f} |")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BIN", "target/debug/pledgeflow"))
    ap.add_argument("-n", type=int, default=5000, help="attacking connections")
    ap.add_argument("--addresses", type=int, default=50, help="source addresses in the spread phase")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (database, server log)")
    ap.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return await measure_alone(args.measure, args.token, args.seconds)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    work = tempfile.mkdtemp(prefix="slow-clients-")
    port = 18000 + random.randrange(2000)
    env = dict(os.environ, PLEDGEFLOW_DATABASE_URL=f"sqlite://{work}/slow.db", PLEDGEFLOW_LISTEN=f"127.0.0.1:{port}",
               PLEDGEFLOW_DATA_DIR=f"{work}/data", PLEDGEFLOW_WORKFLOWS_DIR=f"{repo}/workflows",
               PLEDGEFLOW_TEMPLATES_DIR=f"{repo}/templates", PLEDGEFLOW_LOG="warn")
    log = open(f"{work}/server.log", "w")
    server = subprocess.Popen([args.bin, "serve", "--demo"], env=env, stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                r, w = await open_from("127.0.0.2", port)
                w.write(request("GET", "/readyz", close=True))
                status, _ = await read_response(r)
                if status == 200:
                    break
            except Exception:
                await asyncio.sleep(0.2)
        token = subprocess.run([args.bin, "token", "--role", "window", "--department", "310101-SCJG", "--subject", "slow-bench"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
        print(f"server pid {server.pid}, port {port}, {args.n} attackers, {args.seconds} s per phase; work dir {work}")
        print("| phase | attackers | /healthz ms p50 / p99 / max (kept-alive) | inbox ms p50 / p99 (n) | fresh visitors | attacker connections admitted / refused | peak fds | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|")
        spread = [f"127.0.1.{i + 1}" for i in range(args.addresses)]
        for name, sources, n in (("quiet", ["127.0.0.1"], 0), ("one-addr", ["127.0.0.1"], args.n), ("spread", spread, args.n)):
            name, stats = await phase(name, sources, n, args.seconds, port, server.pid, token)
            print(row(name, n, stats), flush=True)
            await asyncio.sleep(7)  # let the idle timeout clear what is left before the next phase
        with open(f"{work}/server.log") as f:
            text = f.read()
        print(f"server log: {text.count('Too many open files')} 'Too many open files', {text.count('accept failed')} 'accept failed', {text.count('panicked')} panics")
        alive = server.poll() is None
        server.terminate()
        code = server.wait(timeout=30)
        print(f"server alive at the end: {alive}; exit status after SIGTERM: {code}")
    finally:
        if server.poll() is None:
            server.kill()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
