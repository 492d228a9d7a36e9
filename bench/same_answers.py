"""Do two fpreplay builds give the same answers? `analyze --json` and `compare --json` of every
sample (traces/samples/*) and every real trace (../shared/traces/real), byte for byte.

    python3 bench/same_answers.py BEFORE_FPREPLAY AFTER_FPREPLAY [--trace PATH ...]

BEFORE/AFTER are `fpreplay` executables (say one venv's on main and one on a branch). Prints one
line per trace and command, then how many differ; exit status 1 when any does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "traces" / "real"
POLICIES = ["--policy", "always:8", "--policy", "paging:8",
            "--policy", "examine:8:paging OR major = 4"]


def default_traces() -> list[list[Path]]:
    """Each sample's trace (with its IFR dump when it has one), then every real trace."""
    traces = []
    for d in sorted((ROOT / "traces" / "samples").iterdir()):
        if (d / "trace.etl").exists():
            traces.append([d / "trace.etl", *sorted(d.glob("*.txt"))])
    for sub in ("etl", "format_only", "text"):
        traces += [[p] for p in sorted((REAL / sub).glob("*")) if p.is_file()]
    return traces


def run(exe: str, args: list[str]) -> tuple[int, bytes]:
    p = subprocess.run([exe, *args], capture_output=True, timeout=3600)
    return p.returncode, p.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--trace", action="append", type=Path, help="instead of the default set")
    args = ap.parse_args()
    traces = [[t] for t in args.trace] if args.trace else default_traces()
    differ = 0
    for inputs in traces:
        names = [str(p) for p in inputs]
        for command in (["analyze", *names, "--json"], ["compare", *names, *POLICIES, "--json"]):
            a, b = run(args.before, command), run(args.after, command)
            same = a == b
            differ += not same
            print(f"{'same  ' if same else 'DIFFER'} {command[0]:8} exit {a[0]}/{b[0]} "
                  f"{len(a[1]):>8} bytes  {' '.join(p.name for p in inputs)}", flush=True)
    print(f"{differ} of {2 * len(traces)} outputs differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
