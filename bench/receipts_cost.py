"""What receipts cost a push: ``push_fanout.py`` with receipts off, then on, alternately,
``--rounds`` times each, in one session, so that both see the same (shared) machine.

Prints each run's pushes/s, worker CPU ms/push (and its PostgreSQL backends', and the
receipts receiver's: on one machine they take from the same cores), the load average before
it and its receipt figures, then the medians and the ratios on ÷ off (of each adjacent
pair, and their median): on a loaded machine the interleaved ratios are the figure to read.
Fails when a receipts run misses an event.

    .venv/bin/python bench/receipts_cost.py [--rounds 3] [--devices 20000] [--channel apns]
        [-- more push_fanout.py options]
"""

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {
    "pushes_s": re.compile(r"pushes in [\d.]+ s .*: (\d+) pushes/s"),
    "cpu_ms": re.compile(r"worker CPU ([\d.]+) ms/push"),
    "postgres_ms": re.compile(r"PostgreSQL ([\d.]+) ms/push"),
    "receiver_ms": re.compile(r"receipts receiver ([\d.]+) ms/push"),
    "load": re.compile(r"load average ([\d.]+) [\d.]+ [\d.]+ before"),
}
RECEIPTS = re.compile(r"^receipts: .*$", re.MULTILINE)


def run(channel: str, devices: int, receipts: bool, extra: list[str]) -> dict:
    command = [sys.executable, str(ROOT / "bench" / "push_fanout.py"), "--channel", channel,
               "--devices", str(devices), *(["--receipts"] if receipts else []), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    figures = {name: float(found.group(1)) if (found := pattern.search(done.stdout)) else 0.0
               for name, pattern in FIGURES.items()}
    receipt_line = RECEIPTS.search(done.stdout)
    return {**figures, "receipts": receipt_line.group(0) if receipt_line else ""}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--channel", default="apns")
    parser.add_argument("extra", nargs="*", help="more push_fanout.py options, after --")
    args = parser.parse_args()
    pairs = []
    for round_ in range(1, args.rounds + 1):
        pair = {}
        for receipts in (False, True):
            figures = pair["on" if receipts else "off"] = run(args.channel, args.devices,
                                                               receipts, args.extra)
            print(f"round {round_} receipts {'on ' if receipts else 'off'}: "
                  f"{figures['pushes_s']:.0f} pushes/s, {figures['cpu_ms']:.3f} ms CPU/push "
                  f"(+ PostgreSQL {figures['postgres_ms']:.3f}, receiver "
                  f"{figures['receiver_ms']:.3f}), load {figures['load']:.2f}", flush=True)
            if figures["receipts"]:
                print(f"    {figures['receipts']}", flush=True)
        print(f"    on ÷ off: pushes/s {pair['on']['pushes_s'] / pair['off']['pushes_s']:.3f}, "
              f"CPU/push {pair['on']['cpu_ms'] / pair['off']['cpu_ms']:.3f}, PostgreSQL CPU/push "
              f"{pair['on']['postgres_ms'] / max(pair['off']['postgres_ms'], 1e-9):.3f}",
              flush=True)
        pairs.append(pair)
    summarise(pairs)


def summarise(pairs: list[dict]) -> None:
    def median(side, name):
        return statistics.median(pair[side][name] for pair in pairs)

    def median_ratio(name):
        return statistics.median(pair["on"][name] / max(pair["off"][name], 1e-9)
                                 for pair in pairs)

    for side in ("off", "on"):
        print(f"median receipts {side}: {median(side, 'pushes_s'):.0f} pushes/s, "
              f"{median(side, 'cpu_ms'):.3f} ms CPU/push "
              f"(+ PostgreSQL {median(side, 'postgres_ms'):.3f})")
    print(f"on ÷ off, median of the pairs: pushes/s {median_ratio('pushes_s'):.3f}, "
          f"CPU/push {median_ratio('cpu_ms'):.3f}, "
          f"PostgreSQL CPU/push {median_ratio('postgres_ms'):.3f}")


if __name__ == "__main__":
    main()
