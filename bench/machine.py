"""The machine under ``make bench``: wrk, PostgreSQL, ports, and who else is using the CPUs."""

import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg

HOST = "127.0.0.1"
PG_PORT = 5432
ADMIN_DSN = f"host={HOST} port={PG_PORT} user=postgres dbname=postgres connect_timeout=5"
QUIET_SHARE = 0.10


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def database_url(name):
    return f"postgresql://postgres@{HOST}:{PG_PORT}/{name}"


def ensure_wrk():
    if shutil.which("wrk"):
        return
    print("wrk is missing; installing it with apt-get", flush=True)
    if _apt("install", "-y", "wrk") != 0:
        _apt("update")
        _apt("install", "-y", "wrk")
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed and apt-get could not install it. Install it "
                         "(Debian/Ubuntu: `apt-get install wrk`, as root) and run again.")


def _apt(*args):
    if not shutil.which("apt-get"):
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-q", *args], env=env, stdout=subprocess.DEVNULL,
                          check=False, timeout=600).returncode


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def ensure_postgres():
    if port_open(PG_PORT):
        return
    print(f"PostgreSQL is not answering on {HOST}:{PG_PORT}; starting it", flush=True)
    versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() else []
    for version in versions:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                        "start"], check=False, timeout=60)
    deadline = time.monotonic() + 30
    while not port_open(PG_PORT) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not port_open(PG_PORT):
        raise BenchError(f"PostgreSQL is not running on {HOST}:{PG_PORT} and could not "
                         "be started (pg_ctlcluster <version> main start).")


def recreate_database(name):
    """An empty database of the bench's own: each run starts from the same state, with a
    schema that matches the code even when a migration was edited in place."""
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot use PostgreSQL as user postgres (trust auth): {exc}") from exc


def analyze(name):
    """Fresh planner statistics before each run. The PATCH row adds thousands of rows in
    seconds; with the statistics of a nearly empty table PostgreSQL plans the list query
    through the (channel, token) index and spends ~17 ms on it instead of ~0.1 ms."""
    with psycopg.connect(database_url(name), autocommit=True) as connection:
        connection.execute("ANALYZE")


def wait_for_quiet(max_wait):
    """On a shared machine, wait (at most ``max_wait`` s) until others leave it idle enough.

    Every server is idle here, so whatever the machine does is someone else's work."""
    if max_wait <= 0 or not Path("/proc/stat").exists():
        return None
    deadline = time.monotonic() + max_wait
    while True:
        busy = _machine_busy_share(1.0)
        if busy <= QUIET_SHARE or time.monotonic() >= deadline:
            return busy


def _machine_busy_share(seconds):
    def ticks():
        with open("/proc/stat") as stat:
            values = [int(value) for value in stat.readline().split()[1:]]
        return sum(values[:8]), values[3] + values[4]

    total_before, idle_before = ticks()
    time.sleep(seconds)
    total_after, idle_after = ticks()
    total = total_after - total_before
    return 1 - (idle_after - idle_before) / total if total else 0.0


def wait_drained(server_pgid, database, max_wait=120):
    """Wait until a server and its database backends are idle: requests wrk gave up on
    (timeouts) are still worked through after it stops, and would load the next run."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        with CpuMeter(server_pgid, database) as meter:
            time.sleep(1.0)
        if meter.spent("server") + meter.spent("postgres") < 0.05:
            return True
    return False


class CpuMeter:
    """CPU seconds spent during a run, read from /proc: by one server's process group, by
    the PostgreSQL backends of that server's database, by wrk, and by everything else on
    the machine (other people's work on a shared box, which distorts the figures)."""

    def __init__(self, server_pgid, database):
        self.server_pgid = server_pgid
        self.backend_marker = f" {database} "
        self.available = Path("/proc/stat").exists()
        self.tick = os.sysconf("SC_CLK_TCK") if self.available else 100

    def __enter__(self):
        self.before = self._sample()
        return self

    def __exit__(self, *_exc):
        self.after = self._sample()

    def spent(self, key):
        return self.after[key] - self.before[key]

    def per_request(self, requests):
        if not self.available or not requests:
            return None
        spent = {key: self.spent(key) for key in self.before}
        other = spent["machine"] - spent["server"] - spent["postgres"] - spent["wrk"]
        capacity = spent["elapsed"] * (os.cpu_count() or 1)
        return {"server_ms": 1000 * spent["server"] / requests,
                "postgres_ms": 1000 * spent["postgres"] / requests,
                "wrk_ms": 1000 * spent["wrk"] / requests,
                "machine_busy_share": spent["machine"] / capacity if capacity else 0.0,
                "other_share": max(other, 0.0) / capacity if capacity else 0.0}

    def _sample(self):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sample = {"elapsed": time.monotonic(), "server": 0.0, "postgres": 0.0,
                  "wrk": children.ru_utime + children.ru_stime, "machine": 0.0}
        if not self.available:
            return sample
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        sample["machine"] = (sum(ticks[:8]) - ticks[3] - ticks[4]) / self.tick
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / self.tick
            if int(fields[2]) == self.server_pgid:
                sample["server"] += seconds
                if int(pid) == self.server_pgid:  # the master: workers it has reaped
                    sample["server"] += (int(fields[13]) + int(fields[14])) / self.tick
            elif command.startswith("postgres:") and self.backend_marker in command:
                sample["postgres"] += seconds
        return sample
