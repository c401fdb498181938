#!/usr/bin/env python3
"""Fault injection for issue #8: two `pledgeflow serve` processes on one PostgreSQL, deadlines
driven through with a shared fake clock, one process SIGKILLed at random points and restarted,
PostgreSQL restarted mid-run, the SMTP server down for a while. At the end, from the database
and from what a real SMTP server (aiosmtpd) received:

  * every case whose materials never came was reminded once (one `remind` event, its reminder
    mail received by Message-ID), noticed once (one `expire` event, the notice received by the
    applicant and the department) and, silent through the notice's period, revoked once (one
    `response_lapsed` event, its notices received);
  * every case whose materials came in time was not revoked;
  * every email the outbox delivered arrived, every arrival is an outbox row (a resend after a
    crash reuses the Message-ID: counted and reported as duplicates, the documented
    at-least-once), nothing pending, dead or failed is left unexplained;
  * `pledgeflow audit verify --checkpoint` finds every keyed chain intact, and none shorter than at the start, and SIGTERM leaves no claim held.

Time: libfaketime (Debian `faketime`) preloaded into both servers with one offset file, moved by
this script (FAKETIME_NO_CACHE: every clock read sees the current offset, so the two processes
always agree; the monotonic clock stays real, so tokio's timers and sleeps are untouched). The
servers run the real SystemClock: no production code knows it is being tested.

PostgreSQL: a private cluster (initdb in a temporary folder, a free port), so that restarting
it mid-run disturbs no one else using the machine's server.

  tools/faults/run.py --short            # CI: three rounds, about a minute and a half
  tools/faults/run.py --minutes 20       # at length

Exits non-zero on any violation. Needs: the built binary (target/debug/pledgeflow or --bin),
libfaketime, PostgreSQL's server binaries, python3 with aiosmtpd (see tools/faults/requirements.txt).
"""

import argparse
import glob
import http.client
import json
import mailbox
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Monday 2024-01-08 10:00 in Shanghai: the calendars on file (2024 onwards) leave years of fake
# time for a long run.
FAKE_START = datetime(2024, 1, 8, 2, 0, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))
# A claim's lease (store::timers::sweep, delivery::Outbox::deliver_due): 5 minutes. Moving the
# clock past it lets a killed process's claims be retaken.
LEASE = 300
MAIL_DOMAIN = "pledgeflow.localhost"
FOOD = "310101-FOOD-01"
APPLICANT = "91310110666007217T"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Violations:
    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def add(self, msg):
        with self.lock:
            self.items.append(msg)
        log("VIOLATION:", msg)


V = Violations()


# ---------------------------------------------------------------------------------------------
# The shared clock


class FakeClock:
    """An offset file read by libfaketime in every server process: fake time = real time + offset."""

    def __init__(self, path):
        self.path = path
        self.offset = int(FAKE_START.timestamp() - time.time())
        self._write()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{self.offset:+d}\n")
        os.replace(tmp, self.path)  # atomic: a reader never sees half a number

    def now(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += int(seconds)
        self._write()

    def advance_to(self, ts):
        if ts > self.now():
            self.advance(ts - self.now() + 1)

    def text(self, ts=None):
        return datetime.fromtimestamp(self.now() if ts is None else ts, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def find_libfaketime():
    for p in ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"] + glob.glob(
        "/usr/lib/*/faketime/libfaketime.so.1"
    ):
        if os.path.exists(p):
            return p
    sys.exit("libfaketime not found: apt-get install faketime")


# ---------------------------------------------------------------------------------------------
# PostgreSQL, private


class Postgres:
    def __init__(self, root, port):
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not versions:
            sys.exit("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = os.path.dirname(versions[-1])
        self.root, self.port = root, port
        self.data = os.path.join(root, "pgdata")
        self.sock = os.path.join(root, "pgsock")
        os.makedirs(self.sock, exist_ok=True)
        # initdb refuses to run as root: run the cluster as the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(root, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions")
        self.url = f"postgres://postgres@127.0.0.1:{port}/faults"

    def _run(self, tool, *args):
        out = subprocess.run(self.as_user + [os.path.join(self.bin, tool), *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {out.stdout}{out.stderr}")

    def _ctl(self, action, *extra):
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100"
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.root, "postgres.log"), "-w", "-t", "60", *extra, action)

    def start(self):
        self._ctl("start")

    def stop(self, mode="fast"):
        self._ctl("stop", "-m", mode)

    def psql(self, sql, db="faults"):
        out = subprocess.run(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def query(self, sql, tries=120):
        """Retries while the server restarts."""
        for i in range(tries):
            try:
                return self.psql(sql)
            except RuntimeError as e:
                if i == tries - 1:
                    raise
                last = e
                time.sleep(0.5)
        raise last


# ---------------------------------------------------------------------------------------------
# The SMTP server: aiosmtpd's Maildir handler


class Smtp:
    def __init__(self, root, port, python):
        self.dir = os.path.join(root, "maildir")
        self.port, self.python, self.root = port, python, root
        self.proc = None
        self.down = False

    def start(self):
        logf = open(os.path.join(self.root, "smtp.log"), "a")
        self.proc = subprocess.Popen(
            [self.python, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}", "-c", "aiosmtpd.handlers.Mailbox", self.dir],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"220"):
                        self.down = False
                        return
            except OSError:
                time.sleep(0.1)
        sys.exit("aiosmtpd did not come up")

    def stop(self):
        self.down = True
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def received(self):
        """Message-ID -> how many times it arrived."""
        counts = Counter()
        if not os.path.isdir(self.dir):
            return counts
        for msg in mailbox.Maildir(self.dir, create=False):
            counts[(msg["Message-ID"] or "").strip()] += 1
        return counts


def message_id(key):
    # delivery::email::message_id: the idempotency key, non-alphanumerics as dots.
    return "<" + re.sub(r"[^A-Za-z0-9-]", ".", key) + "@" + MAIL_DOMAIN + ">"


# ---------------------------------------------------------------------------------------------
# The two servers


class Server:
    def __init__(self, name, binary, env, root):
        self.name, self.binary, self.env = name, binary, env
        self.port = int(env["PLEDGEFLOW_LISTEN"].rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.logpath = os.path.join(root, f"{name}.log")
        self.proc = None
        self.lock = threading.Lock()
        self.starts = 0
        self.kills = 0
        self.expected_exit = False

    def start(self):
        with self.lock:
            logf = open(self.logpath, "a")
            logf.write(f"\n===== start {self.starts + 1} =====\n")
            logf.flush()
            self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO)
            self.starts += 1
            self.expected_exit = False

    def kill(self):
        with self.lock:
            if self.proc and self.proc.poll() is None:
                self.expected_exit = True
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                self.kills += 1
                return True
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ready(self):
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                return json.load(r).get("ready") is True
        except Exception:
            return False

    def wait_ready(self, seconds=60):
        end = time.time() + seconds
        while time.time() < end:
            if self.ready():
                return True
            if not self.alive():
                return False
            time.sleep(0.2)
        return False


class NotSent(Exception):
    """The request never reached a server (connection refused): safe to send elsewhere."""


class Unknown(Exception):
    """The connection broke after sending: the request may or may not have happened."""


def post(server, token, query, variables, timeout=60):
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(
        server.base + "/graphql", data=body, headers={"content-type": "application/json", "authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            raise NotSent() from e
        raise Unknown(str(e)) from e
    except (http.client.HTTPException, ConnectionError, socket.timeout, json.JSONDecodeError) as e:
        raise Unknown(str(e)) from e


# ---------------------------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.root = tempfile.mkdtemp(prefix="pledgeflow-faults-")
        os.chmod(self.root, 0o755)
        log("working in", self.root, "seed", args.seed)
        self.clock = FakeClock(os.path.join(self.root, "faketime"))
        self.pg = Postgres(os.path.join(self.root, "pg"), free_port())
        self.smtp = Smtp(self.root, free_port(), args.python)
        self.binary = args.bin
        self.pg_restarts = 0
        self.smtp_outages = 0
        self.pg_down_since = None
        self.pg_windows = []  # (from, to) real times the database was down, with a margin
        self.unknown_requests = 0
        self.stop_chaos = threading.Event()
        self.chaos_pause = threading.Lock()
        self.rounds = 0

    def env(self, port=None):
        env = dict(os.environ)
        env.update(
            {
                "LD_PRELOAD": self.libfaketime,
                "FAKETIME_TIMESTAMP_FILE": self.clock.path,
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "PLEDGEFLOW_DATABASE_URL": self.pg.url,
                "PLEDGEFLOW_WORKFLOWS_DIR": os.path.join(REPO, "workflows"),
                "PLEDGEFLOW_TEMPLATES_DIR": os.path.join(REPO, "templates"),
                "PLEDGEFLOW_DATA_DIR": os.path.join(self.root, "data"),
                # One signing key for both servers and the token command: a token minted once
                # works on either.
                "PLEDGEFLOW_KEY_FILE": os.path.join(self.root, "signing.key"),
                # And one audit key: both servers key the trail alike, `audit verify` checks it.
                "PLEDGEFLOW_AUDIT_KEY_FILE": os.path.join(self.root, "audit.key"),
                "PLEDGEFLOW_MAIL_URL": f"smtp://127.0.0.1:{self.smtp.port}",
                "PLEDGEFLOW_MAIL_TIMEOUT_SECS": "10",
                "PLEDGEFLOW_SWEEP_SCHEDULE": "*/1 * * * * *",
                "PLEDGEFLOW_OUTBOX_BACKOFF_SECS": "1",
                # Enough tries for an SMTP outage of tens of seconds with the clock moving.
                "PLEDGEFLOW_OUTBOX_MAX_ATTEMPTS": "40",
                "PLEDGEFLOW_CONFIG": self.config_path,
                "PLEDGEFLOW_GRAPHIQL": "false",
                # The faked clock runs months ahead over a run: the window's one token lives a year
                # (the longest lifetime a token may be given).
                "PLEDGEFLOW_JWT_MAX_LIFETIME_HOURS": "8760",
                "PLEDGEFLOW_LOG": "info,sea_orm=warn,sqlx=warn",
                "NO_COLOR": "1",
            }
        )
        if port:
            env["PLEDGEFLOW_LISTEN"] = f"127.0.0.1:{port}"
        return env

    def cli(self, *args, check=True):
        out = subprocess.run([self.binary, *args], env=self.env(), capture_output=True, text=True, cwd=REPO)
        if check and out.returncode != 0:
            raise RuntimeError(f"pledgeflow {' '.join(args)}: {out.stdout}{out.stderr}")
        return out

    # -- set-up ------------------------------------------------------------------------------

    def setup(self):
        self.libfaketime = find_libfaketime()
        self.config_path = os.path.join(self.root, "pledgeflow.toml")
        with open(self.config_path, "w") as f:
            f.write(
                '[contacts]\ndepartment = "department@faults.localhost"\ndivision = "division@faults.localhost"\n'
                'supervisors = "supervisors@faults.localhost"\ndigest = "digest@faults.localhost"\n'
                # The run's one applicant breaks promise after promise: records only move its
                # tier; the dishonesty list is a supervisor's decision, never a count.
            )
        self.pg.start()
        self.pg.psql("CREATE DATABASE faults", db="postgres")
        self.smtp.start()
        # The fake clock really reaches the Rust binary: a token minted under it is issued at
        # the fake time.
        claims = self.mint_window_token()
        if abs(claims["iat"] - self.clock.now()) > 120:
            sys.exit(f"libfaketime does not reach the binary: token issued at {claims['iat']}, fake now {self.clock.now():.0f}")
        log("fake clock reaches the binary: token issued at", self.clock.text(claims["iat"]))
        print(self.cli("demo").stdout.strip(), flush=True)
        # Staff tokens are checked against the staff registry: the run's window officer is registered.
        print(self.cli("staff", "--id", "faults-window", "--name", "faults", "--role", "window", "--region", "310101", "--department", "310101-SCJG").stdout.strip(), flush=True)
        self.servers = [Server(f"server-{i}", self.binary, self.env(free_port()), self.root) for i in (1, 2)]
        for s in self.servers:
            s.start()
        for s in self.servers:
            if not s.wait_ready(120):
                sys.exit(f"{s.name} did not come up: see {s.logpath}")
        log("both servers ready on", ", ".join(s.base for s in self.servers))

    # -- requests ----------------------------------------------------------------------------

    def call(self, query, variables):
        """Sends to a live server, another when refused; None when the outcome is unknown."""
        end = time.time() + 120
        while time.time() < end:
            for s in self.rng.sample(self.servers, len(self.servers)):
                try:
                    return post(s, self.window, query, variables)
                except NotSent:
                    continue
                except Unknown as e:
                    self.unknown_requests += 1
                    log(f"  request to {s.name} broke off ({e}): outcome left to the database")
                    return None
            time.sleep(0.3)
        V.add("no server answered for two minutes")
        return None

    def mint_window_token(self):
        """The window officer's token, minted under the fake clock for a year (the longest a
        token may live); answers its claims."""
        import base64

        self.window = self.cli("token", "--role", "window", "--department", "310101-SCJG", "--subject", "faults-window", "--hours", "8760").stdout.strip()
        self.window_claims = json.loads(base64.urlsafe_b64decode(self.window.split(".")[1] + "=="))
        return self.window_claims

    def fresh_window_token(self):
        """A run at length moves the fake clock by weeks a round, past a year in about twenty
        rounds: the token is minted again before its last month, as an officer logs in again."""
        if self.window_claims["exp"] - self.clock.now() < 30 * 86400:
            self.mint_window_token()
            log("window token minted again: issued", self.clock.text(self.window_claims["iat"]))

    def open_case(self, marker, days):
        q = (
            "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id state instance { timers { name dueAt } } } } }"
        )
        i = {
            "applicantUscc": APPLICANT,
            "itemCode": FOOD,
            "mode": "DEFERRAL",
            "deferralWorkingDays": days,
            "signedBy": marker,
            "materials": [
                {"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"},
                {"code": "M02", "status": "DEFERRED"},
                {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"},
            ],
        }
        r = self.call(q, {"i": i})
        if r is None:
            return None
        if r.get("errors"):
            log(f"  openCase {marker}: {r['errors'][0].get('extensions', {}).get('code')} {r['errors'][0]['message']}")
            return None
        return r["data"]["openCase"]["case"]

    def submit(self, case_id):
        q = 'mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: "M02", fileRef: "DOC-2"}) { case { state } } }'
        r = self.call(q, {"id": case_id})
        if r and r.get("errors"):
            log(f"  submitMaterial {case_id}: {r['errors'][0].get('extensions', {}).get('code')} {r['errors'][0]['message']}")
        return r

    # -- chaos -------------------------------------------------------------------------------

    def kill_one(self, why):
        if self.stop_chaos.is_set():  # a kill timed just after a clock move, due after the end
            return
        live = [s for s in self.servers if s.alive()]
        if not live:
            return
        s = self.rng.choice(live)
        if s.kill():
            log(f"  SIGKILL {s.name} ({why}); clock {self.clock.text()}")
            time.sleep(self.rng.uniform(0.1, 2.5))
            s.start()

    def chaos(self):
        """Kills a random server every few seconds, sometimes both; restarts each after a moment."""
        lo, hi = self.args.kill_every
        while not self.stop_chaos.wait(self.rng.uniform(lo, hi)):
            with self.chaos_pause:
                if self.rng.random() < 0.1:
                    both = [s for s in self.servers if s.kill()]
                    if both:
                        log(f"  SIGKILL both servers; clock {self.clock.text()}")
                        time.sleep(self.rng.uniform(0.5, 2.0))
                        for s in both:
                            s.start()
                else:
                    self.kill_one("random")

    def watchdog(self):
        """Restarts a server that died on its own, and counts it against the run unless the
        database was down (a process cannot start without its database)."""
        while not self.stop_chaos.is_set():
            for s in self.servers:
                with s.lock:
                    died = s.proc is not None and s.proc.poll() is not None and not s.expected_exit
                    code = s.proc.returncode if died else None
                if died:
                    if not self.db_was_down():
                        V.add(f"{s.name} exited by itself with {code} (see {s.logpath})")
                    else:
                        log(f"  {s.name} exited with {code} while the database was down; restarting")
                    time.sleep(1)
                    s.start()
            time.sleep(0.5)

    def db_was_down(self):
        now = time.time()
        if self.pg_down_since is not None:
            return True
        return any(a <= now <= b for a, b in self.pg_windows)

    def restart_postgres(self):
        mode = self.rng.choice(["fast", "immediate"])
        log(f"  restarting PostgreSQL ({mode} stop) mid-round; clock {self.clock.text()}")
        self.pg_down_since = time.time()
        self.pg.stop(mode)
        time.sleep(self.rng.uniform(1, 4))
        self.pg.start()
        # Processes may notice the outage for a while after it ends (pool reconnects, a start
        # that had begun): a margin.
        self.pg_windows.append((self.pg_down_since, time.time() + 45))
        self.pg_down_since = None
        self.pg_restarts += 1

    # -- waiting -----------------------------------------------------------------------------

    def settle(self, label, done, latest, max_real=240):
        """Waits until `done()` is true. When nothing moves for a few seconds (a killed
        process's lease, a backoff), moves the clock past the lease, never beyond `latest`."""
        start = last_move = time.time()
        last = None
        while True:
            ok, progress = done()
            if ok:
                return True
            if progress != last:
                last, last_move = progress, time.time()
            if time.time() - last_move > 6 and not self.smtp.down and self.clock.now() + LEASE + 60 < latest:
                self.clock.advance(LEASE + 60)
                log(f"  {label}: no progress ({progress}); clock moved past the lease to {self.clock.text()}")
                last_move = time.time()
            if time.time() - start > max_real:
                V.add(f"{label}: not done within {max_real} s ({progress})")
                return False
            time.sleep(0.5)

    def round_cases(self, r):
        rows = self.pg.query(
            f"SELECT c.instance_id, i.state, c.signed_by FROM cases c JOIN workflow_instances i ON i.id = c.instance_id "
            f"WHERE c.signed_by LIKE 'faults-r{r}-%'"
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def pending_mail(self, ids, topic):
        if not ids:
            return 0, 0
        inlist = ",".join(f"'{i}'" for i in ids)
        rows = self.pg.query(
            f"SELECT COUNT(*) FILTER (WHERE status = 'delivered'), COUNT(*) FROM outbox "
            f"WHERE instance_id IN ({inlist}) AND channel = 'email' AND topic = '{topic}'"
        )
        return int(rows[0][0]), int(rows[0][1])

    def unsent(self, ids, topic):
        """Messages of `topic` for these cases on any channel (the SMS copy too) not yet settled."""
        if not ids:
            return 0
        inlist = ",".join(f"'{i}'" for i in ids)
        return int(self.pg.query(f"SELECT COUNT(*) FROM outbox WHERE instance_id IN ({inlist}) AND topic = '{topic}' AND status = 'pending'")[0][0])

    # -- a round -----------------------------------------------------------------------------

    def one_round(self, r, smtp_outage, pg_restart_phase):
        days = self.rng.randint(1, 3)
        n = self.rng.randint(*self.args.cases)
        kinds = [self.rng.choice(["early", "late", "never", "never"]) for _ in range(n)]
        log(f"round {r}: {n} cases, {days} working day(s), clock {self.clock.text()}: " + ", ".join(f"{k}" for k in kinds))
        opened = {}
        reminder_at = expiry_at = None
        self.fresh_window_token()
        for k, kind in enumerate(kinds):
            case = self.open_case(f"faults-r{r}-{k}-{kind}", days)
            if case is None:
                continue
            opened[case["id"]] = kind
            due = {t["name"]: datetime.fromisoformat(t["dueAt"].replace("Z", "+00:00")).timestamp() for t in case["instance"]["timers"]}
            reminder_at, expiry_at = due["reminder"], due["expiry"]
            if kind == "early":
                self.submit(case["id"])
        if expiry_at is None:
            V.add(f"round {r}: no case could be opened")
            return False
        # Cases whose response was lost are in the database all the same, and a submission
        # whose answer was lost may have happened: the database decides who is still waiting.
        cases = self.round_cases(r)
        expect_reminder = [i for i, (state, _) in cases.items() if state == "awaiting_materials"]

        # To the reminder (the working day before, 09:00): a little after it, at a random point.
        if smtp_outage:
            self.smtp.stop()
            self.smtp_outages += 1
            # A reminder already due at opening (one working day, after 09:00) may have gone
            # out before; one accepted just before the stop may be settled just after.
            time.sleep(1)
            before_outage = self.pending_mail(expect_reminder, "deferral_reminder")[0]
            log(f"  SMTP server down ({before_outage} reminder(s) of the round delivered before)")
        self.clock.advance_to(reminder_at + self.rng.uniform(1, 600))
        log(f"  clock to the reminder: {self.clock.text()}")
        if self.rng.random() < 0.7:
            threading.Timer(self.rng.uniform(0, 1.5), self.kill_one, ["just after the clock moved"]).start()
        if pg_restart_phase == "reminder":
            time.sleep(self.rng.uniform(0, 1.5))
            self.restart_postgres()
        if smtp_outage:
            time.sleep(self.rng.uniform(6, 12))
            delivered, total = self.pending_mail(expect_reminder, "deferral_reminder")
            log(f"  SMTP server back up ({delivered - before_outage}/{total} reminders delivered while it was down)")
            if delivered > before_outage:
                V.add(f"round {r}: {delivered - before_outage} reminder(s) marked delivered while the SMTP server was down")
            self.smtp.start()

        # Every channel's reminder settled before the deadline passes: a reminder still queued
        # when it has passed is skipped as pointless, rightly — but then it was never sent.
        def reminded():
            delivered, total = self.pending_mail(expect_reminder, "deferral_reminder")
            waiting = self.unsent(expect_reminder, "deferral_reminder")
            return delivered == len(expect_reminder) and waiting == 0, (delivered, total, waiting)

        self.settle(f"round {r} reminders", reminded, expiry_at - 3600)

        for i, kind in opened.items():
            if kind == "late":
                self.submit(i)
        cases = self.round_cases(r)

        # To the deadline: the broken promises are revoked.
        self.clock.advance_to(expiry_at + self.rng.uniform(1, 600))
        log(f"  clock past the deadline: {self.clock.text()}")
        if self.rng.random() < 0.7:
            threading.Timer(self.rng.uniform(0, 1.5), self.kill_one, ["just after the clock moved"]).start()
        if pg_restart_phase == "expiry":
            time.sleep(self.rng.uniform(0, 1.5))
            self.restart_postgres()
        never = [i for i, (state, _) in cases.items() if state == "awaiting_materials"]

        # A notice first, to the applicant and the department, with the period to state the case.
        def noticed():
            now = self.round_cases(r)
            states = Counter(now[i][0] for i in never)
            delivered, total = self.pending_mail(never, "breach_notice")
            return states.get("breach_noticed", 0) == len(never) and delivered == 2 * len(never), (dict(states), delivered, total)

        self.settle(f"round {r} notices", noticed, float("inf"))

        # Silent through the period (5 working days; 20 calendar days cover any holiday): ended
        # on the department's behalf, the applicant told of the revocation, the department of it.
        self.clock.advance_to(expiry_at + 20 * 86400 + self.rng.uniform(1, 600))
        log(f"  clock past the response period: {self.clock.text()}")

        def revoked():
            now = self.round_cases(r)
            states = Counter(now[i][0] for i in never)
            delivered, total = self.pending_mail(never, "deferral_revoked")
            return states.get("revoked", 0) == len(never) and delivered == len(never), (dict(states), delivered, total)

        self.settle(f"round {r} revocations", revoked, float("inf"))

    def drain(self):
        """After the chaos: everything due is fired and delivered, within a few clock moves."""

        def quiet():
            now_ms = int(self.clock.now() * 1000)
            t = self.pg.query(f"SELECT COUNT(*) FROM workflow_timers WHERE status = 'pending' AND due_at <= {now_ms}")[0][0]
            o = self.pg.query(f"SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= {now_ms + 60_000}")[0][0]
            return int(t) == 0 and int(o) == 0, (t, o)

        self.settle("drain", quiet, float("inf"))

    def run(self):
        self.setup()
        # The chain heads before the chaos: no kill or restart may lose or truncate a history.
        self.checkpoints = os.path.join(self.root, "audit-checkpoints.jsonl")
        self.cli("audit", "checkpoint", "--file", self.checkpoints)
        threads = [threading.Thread(target=self.chaos, daemon=True), threading.Thread(target=self.watchdog, daemon=True)]
        for t in threads:
            t.start()
        started = time.time()
        if self.args.short:
            plan = [(True, None), (False, "reminder"), (False, "expiry")]
        else:
            plan = None
        r = 0
        while True:
            if plan is not None:
                if r >= len(plan):
                    break
                smtp_outage, pg_phase = plan[r]
            else:
                if time.time() - started > self.args.minutes * 60:
                    break
                smtp_outage = self.rng.random() < 0.25
                pg_phase = self.rng.choice([None, None, None, "reminder", "expiry"])
            opened = self.one_round(r, smtp_outage, pg_phase)
            r += 1
            if opened is False:
                # Whatever refused every case (recorded) would refuse the next round's too.
                break
        self.rounds = r
        self.stop_chaos.set()
        for t in threads:
            t.join()
        for s in self.servers:
            if not s.alive():
                s.start()
            if not s.wait_ready(60):
                V.add(f"{s.name} does not come up after the chaos")
        self.drain()
        self.chaos_seconds = time.time() - started
        self.shutdown()
        self.verify()

    # -- the end -----------------------------------------------------------------------------

    def shutdown(self):
        for s in self.servers:
            s.expected_exit = True
            s.proc.send_signal(signal.SIGTERM)
        for s in self.servers:
            try:
                code = s.proc.wait(20)
            except subprocess.TimeoutExpired:
                V.add(f"{s.name} did not stop within 20 s of SIGTERM")
                s.proc.kill()
                continue
            if code != 0:
                V.add(f"{s.name} exited {code} on SIGTERM")
        held = self.pg.query(
            "SELECT (SELECT COUNT(*) FROM workflow_timers WHERE status = 'pending' AND claimed_by IS NOT NULL AND claimed_until > "
            f"{int(self.clock.now() * 1000)}), (SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND claimed_by IS NOT NULL AND claimed_until > {int(self.clock.now() * 1000)})"
        )[0]
        if held != ["0", "0"]:
            V.add(f"claims still held after SIGTERM: timers {held[0]}, messages {held[1]}")

    def verify(self):
        q = self.pg.query
        received = self.smtp.received()
        cases = q("SELECT c.instance_id, c.signed_by, i.state FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE c.signed_by LIKE 'faults-r%'")
        events = defaultdict(Counter)
        for inst, ev in q("SELECT e.instance_id, e.event FROM workflow_events e JOIN cases c ON c.instance_id = e.instance_id WHERE c.signed_by LIKE 'faults-r%'"):
            events[inst][ev] += 1
        mails = defaultdict(list)
        for inst, topic, status, key in q(
            "SELECT o.instance_id, o.topic, o.status, o.idempotency_key FROM outbox o JOIN cases c ON c.instance_id = o.instance_id "
            "WHERE c.signed_by LIKE 'faults-r%' AND o.channel = 'email'"
        ):
            mails[(inst, topic)].append((status, key))

        kept = broken = reminders = revocations = 0
        duplicates = 0
        for inst, marker, state in cases:
            ev = events[inst]
            if ev["materials_complete"]:
                kept += 1
                if ev["expire"] or state == "revoked":
                    V.add(f"{marker} {inst}: materials came in time, yet revoked ({state}, {ev['expire']} expire)")
                if ev["remind"] > 1:
                    V.add(f"{marker} {inst}: {ev['remind']} remind events")
                if marker.endswith("-late") and ev["remind"] != 1:
                    V.add(f"{marker} {inst}: materials after the reminder, yet {ev['remind']} remind events")
            else:
                broken += 1
                if ev["remind"] != 1 or ev["expire"] != 1 or ev["response_lapsed"] != 1 or state != "revoked":
                    V.add(f"{marker} {inst}: {ev['remind']} remind, {ev['expire']} expire, {ev['response_lapsed']} response_lapsed, state {state}: want 1, 1, 1, revoked")
            want = {
                "deferral_reminder": ev["remind"],
                "breach_notice": 2 * ev["expire"],
                "deferral_revoked": ev["response_lapsed"],
                "revoked_on_behalf": ev["response_lapsed"],
            }
            for topic, n in want.items():
                rows = mails[(inst, topic)]
                if len(rows) != n:
                    V.add(f"{marker} {inst}: {len(rows)} {topic} outbox rows, want {n}")
                for status, key in rows:
                    got = received[message_id(key)]
                    if status != "delivered" or got == 0:
                        V.add(f"{marker} {inst}: {topic} {key} is {status}, received {got} time(s)")
                    duplicates += max(0, got - 1)
                    if topic == "deferral_reminder":
                        reminders += got > 0
                    else:
                        revocations += got > 0

        # Every email the outbox holds: delivered ones arrived; every arrival is an outbox row.
        all_mail = q("SELECT idempotency_key, status, topic, COALESCE(last_error, '') FROM outbox WHERE channel = 'email'")
        known = {message_id(k) for k, *_ in all_mail}
        for key, status, topic, err in all_mail:
            if status == "delivered" and received[message_id(key)] == 0:
                V.add(f"outbox {key} ({topic}) delivered but never received")
        unknown = [m for m in received if m not in known]
        if unknown:
            V.add(f"{len(unknown)} message(s) received with a Message-ID no outbox row has: {unknown[:5]}")
        total_dups = sum(n - 1 for n in received.values() if n > 1)
        status = Counter(s for _, s, _, _ in all_mail)
        for key, st, topic, err in q("SELECT idempotency_key, status, topic, COALESCE(last_error, '') FROM outbox WHERE status IN ('dead', 'pending')"):
            V.add(f"outbox {key} ({topic}) left {st}: {err}")
        skipped = q(
            "SELECT o.topic, COUNT(*) FROM outbox o LEFT JOIN cases c ON c.instance_id = o.instance_id "
            "WHERE o.status = 'skipped' AND (c.signed_by IS NULL OR c.signed_by NOT LIKE 'faults-r%') GROUP BY o.topic"
        )
        ours_skipped = q("SELECT COUNT(*) FROM outbox o JOIN cases c ON c.instance_id = o.instance_id WHERE o.status = 'skipped' AND c.signed_by LIKE 'faults-r%'")[0][0]
        if ours_skipped != "0":
            V.add(f"{ours_skipped} message(s) of the run's cases skipped")
        failed_timers = q("SELECT id, event, COALESCE(last_error, '') FROM workflow_timers WHERE status = 'failed'")
        for t in failed_timers:
            V.add(f"timer {t[0]} ({t[1]}) failed: {t[2]}")
        per_instance = q(
            "SELECT COUNT(*) FROM workflow_instances i WHERE i.version <> (SELECT COUNT(*) FROM workflow_events e WHERE e.instance_id = i.id)"
        )[0][0]
        if per_instance != "0":
            V.add(f"{per_instance} instance(s) whose version is not their number of events")
        audit = self.cli("audit", "verify", "--checkpoint", self.checkpoints, check=False)
        if audit.returncode != 0 or " 0 break(s)" not in audit.stdout:
            V.add(f"audit verify: exit {audit.returncode}: {audit.stdout[-2000:]}")
        panics = []
        for s in self.servers:
            with open(s.logpath, errors="replace") as f:
                panics += [f"{s.name}: {line.strip()}" for line in f if "panicked" in line]
        for p in panics[:10]:
            V.add(p)

        # Two processes taking locks in different orders show up as PostgreSQL aborting one
        # of them: retried, so nothing is lost, but a request or a sweep failed for it.
        with open(os.path.join(self.pg.root, "postgres.log"), errors="replace") as f:
            deadlocks = sum("deadlock detected" in line for line in f)
        if deadlocks:
            V.add(f"PostgreSQL reported {deadlocks} deadlock(s) (see {self.pg.root}/postgres.log)")
        kills = sum(s.kills for s in self.servers)
        starts = sum(s.starts for s in self.servers)
        summary = {
            "seconds": round(self.chaos_seconds),
            "rounds": self.rounds,
            "cases": len(cases),
            "kept": kept,
            "broken (reminded and revoked)": broken,
            "sigkills": kills,
            "server starts": starts,
            "postgres restarts": self.pg_restarts,
            "deadlocks": deadlocks,
            "smtp outages": self.smtp_outages,
            "requests whose outcome was unknown": self.unknown_requests,
            "reminders received (by Message-ID)": reminders,
            "revocation notices received": revocations,
            "mails received": sum(received.values()),
            "distinct Message-IDs": len(received),
            "duplicate deliveries (same Message-ID)": total_dups,
            "of which the run's cases": duplicates,
            "email outbox rows by status": dict(status),
            "skipped elsewhere (demo cases, deadline passed)": {t: int(n) for t, n in skipped},
            "audit": audit.stdout.strip().splitlines()[-1] if audit.stdout.strip() else "",
            "fake time at the end": self.clock.text(),
        }
        print(json.dumps(summary, ensure_ascii=False, indent=2), flush=True)
        log("logs and data in", self.root)

    def cleanup(self):
        self.stop_chaos.set()
        for s in getattr(self, "servers", []):
            if s.alive():
                s.proc.kill()
        try:
            self.smtp.stop()
        except Exception:
            pass
        try:
            self.pg.stop("fast")
        except Exception:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", action="store_true", help="three fixed rounds (SMTP outage; PostgreSQL restarts), for CI")
    p.add_argument("--minutes", type=float, default=15, help="how long to run rounds (without --short)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--bin", default=os.path.join(REPO, "target", "debug", "pledgeflow"))
    p.add_argument("--python", default=sys.executable, help="a python with aiosmtpd")
    p.add_argument("--cases", type=int, nargs=2, default=[4, 8], metavar=("MIN", "MAX"), help="cases per round")
    p.add_argument("--kill-every", type=float, nargs=2, default=[3, 9], metavar=("MIN", "MAX"), help="seconds between random kills")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    args = p.parse_args()
    run = Run(args)
    try:
        run.run()
    finally:
        run.cleanup()
    if V.items:
        print(f"FAILED: {len(V.items)} violation(s); logs in {run.root}", flush=True)
        for v in V.items[:50]:
            print("  -", v)
        sys.exit(1)
    print("faults: 0 violations", flush=True)
    if not args.keep:
        shutil.rmtree(run.root, ignore_errors=True)


if __name__ == "__main__":
    main()
