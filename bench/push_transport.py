"""Push transport micro benchmark: N pushes through ``ApnsClient.send_many`` to the fake APNs.

The fake runs in its own process (``python -m tests.fake_apns --fast``); this process is the
client only, so its CPU time is the transport's. Prints pushes/s, the client's CPU ms per push
(the figure that matters: pushes/s also depends on the fake and on whatever else the machine
runs, so the load average is printed too) and the fake's.

    .venv/bin/python bench/push_transport.py [--pushes 100000] [--connections 2] [--batch 5000]
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.push.apns import Action, ApnsClient, ApnsSettings, Device, Notification  # noqa: E402


def start_fake(max_streams: int, module: str = "tests.fake_apns", *options: str):
    """The fake in its own process (``options``: more of its command line), and the JSON
    line it printed: where and how to connect."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--max-streams", str(max_streams), "--fast", *options],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return process, json.loads(process.stdout.readline())


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def items(count: int):
    notification = Notification(alert={"title": "New post", "body": "Someone posted a photo"},
                                badge=1, sound="default", custom={"post_id": "p123"})
    return [(Device(f"{index:064x}"), notification, str(uuid.uuid4())) for index in range(count)]


async def run(settings: ApnsSettings, pushes: int, batch: int, fake_pid: int):
    work = items(pushes)
    async with ApnsClient(settings) as client:
        await client.send_many(items(batch))  # connect and mint outside the measurement
        fake_cpu = cpu_seconds_of(fake_pid)
        started, cpu_started = time.perf_counter(), time.process_time()
        outcomes = []
        for start in range(0, pushes, batch):
            outcomes += await client.send_many(work[start:start + batch])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        fake_cpu = cpu_seconds_of(fake_pid) - fake_cpu
    sent = sum(outcome.action is Action.SENT for outcome in outcomes)
    return sent, elapsed, cpu, fake_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000, help="items per send_many call")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--max-streams", type=int, default=100)
    parser.add_argument("--server-streams", type=int, default=1000)
    args = parser.parse_args()
    process, fake = start_fake(args.server_streams)
    try:
        settings = ApnsSettings(
            bundle_id=fake["bundle_id"], key=fake["key_file"], key_id=fake["key_id"],
            team_id=fake["team_id"], production_url=fake["url"], sandbox_url=fake["url"],
            ca_file=fake["ca_file"], connections=args.connections, max_streams=args.max_streams)
        sent, elapsed, cpu, fake_cpu = asyncio.run(
            run(settings, args.pushes, args.batch, process.pid))
    finally:
        process.terminate()
        process.wait()
    client_ms = cpu * 1000 / args.pushes
    print(f"{sent}/{args.pushes} sent over {args.connections} connection(s) x "
          f"{args.max_streams} streams in {elapsed:.2f} s: {sent / elapsed:,.0f} pushes/s")
    print(f"client CPU {client_ms:.3f} ms per push (one core: {1000 / client_ms:,.0f} "
          f"pushes/s); fake APNs CPU {fake_cpu * 1000 / args.pushes:.3f} ms per push; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
