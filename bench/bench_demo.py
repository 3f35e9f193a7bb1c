"""Figures for `inv demo` (issue 6): its wall time on a warm machine, and each phase's.

Runs `inv demo` as a user does (a subprocess, interpreter start included) several times and
reads the phase times it prints. Prints, does not assert: `python bench/bench_demo.py`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASE = re.compile(r"^\[(\d+)/\d+\] (.*)$")
DONE = re.compile(r"^\s+done in ([0-9.]+) s$")


def one_run() -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"inv demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    phases: dict[str, float] = {}
    title = None
    for line in done.stdout.splitlines():
        if match := PHASE.match(line):
            title = f"{match[1]}. {match[2]}"
        elif (match := DONE.match(line)) and title:
            phases[title] = float(match[1])
    return wall, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    one_run()  # warm: imports compiled, packages in the page cache
    walls, phases = [], {}
    for _ in range(options.runs):
        wall, timed = one_run()
        walls.append(wall)
        for title, seconds in timed.items():
            phases.setdefault(title, []).append(seconds)
    print(f"inv demo on a warm machine (n={options.runs}, after one warm-up run)")
    print(
        f"  wall time, interpreter start to exit   median {statistics.median(walls):6.2f} s"
        f"  max {max(walls):6.2f} s"
    )
    for title, values in phases.items():
        print(f"  {title[:60]:<60} median {statistics.median(values):6.2f} s")
    accounted = sum(statistics.median(values) for values in phases.values())
    print(f"  phases add up to {accounted:.2f} s; the rest is start-up and shut-down")


if __name__ == "__main__":
    main()
