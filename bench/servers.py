"""gunicorn servers under test, and wrk loading them."""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import requests
from machine import HOST, BenchError, free_port

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
START_TIMEOUT = 60
STOP_TIMEOUT = 10


class Server:
    """One gunicorn, in its own process group, logging to a file in bench/results/.

    ``command`` ends with the bind address, filled in here; ``database`` is the one whose
    PostgreSQL backends count as this server's CPU."""

    def __init__(self, name, command, *, env, cwd, database, probe_path):
        self.name = name
        self.database = database
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.probe_url = self.base_url + probe_path
        self.log_path = RESULTS / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen([*command, "--bind", f"{HOST}:{self.port}"],
                                        cwd=cwd, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self):
        """Any HTTP answer (a 401 too) means a worker is up."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                requests.get(self.probe_url, timeout=2)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            time.sleep(1)  # the other workers finish booting
            if self.process.poll() is None:
                return
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise BenchError(f"{self.name} did not start on {self.base_url}; log "
                         f"{self.log_path}:\n{tail}")

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)  # graceful: workers finish up
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of this server's own process group (workers of a dead master).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} (pid {self.process.pid}) did not exit", flush=True)
        self._log.close()


def gunicorn_env(base, **extra):
    """The settings every server gets; they differ from production on purpose (see run.py)."""
    env = {key: value for key, value in base.items()
           if key not in ("REDIS_URL", "APP_ENV", "GUNICORN_BIND", "DATABASE_URL")}
    env.update(LOG_LEVEL="WARNING", GUNICORN_ACCESS_LOG="/dev/null",
               GUNICORN_GRACEFUL_TIMEOUT="5",
               GUNICORN_MAX_REQUESTS=base.get("BENCH_MAX_REQUESTS", "0"))
    env.update(extra)
    return env


def run_wrk(base_url, lua_args, args, duration):
    """wrk with ``bench/wrk.lua``; its figures, requests/s and wrk's own text."""
    command = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{duration}s",
               "--timeout", "10s", "--latency", "-s", str(BENCH / "wrk.lua"), base_url,
               "--", *lua_args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    line = next((line for line in result.stdout.splitlines()
                 if line.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    stats = json.loads(line[len("BENCH_JSON "):])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["wrk_output"] = result.stdout.replace(line, "").strip()
    return stats
