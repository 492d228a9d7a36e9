"""CLI start-up: `fpreplay --version` and `--help`, best of --repeat runs (issue 14 and 10
target: under 0.15 s wall). Wall clock and the CPU time of the child (user + sys), which is the
fairer figure when other work shares the machine (load average shown). Runs the `fpreplay`
script installed beside this Python, with its bytecode caches written first, as an installed
tool has them.

    python3 bench/bench_startup.py [--repeat 5] [--fpreplay PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def best(cmd: list[str], repeat: int) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, env=env, capture_output=True, check=True)   # writes the .pyc files
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fpreplay", default=str(Path(sys.executable).with_name("fpreplay")))
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    wall, cpu = best([sys.executable, "-c", "pass"], args.repeat)
    print(f"{'python -c pass':<22} wall {wall:.3f} s  cpu {cpu:.3f} s")
    for flag in ("--version", "--help"):
        wall, cpu = best([args.fpreplay, flag], args.repeat)
        print(f"{'fpreplay ' + flag:<22} wall {wall:.3f} s  cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()
