"""Where `fpreplay compare` spends its time on a big trace: read, lifecycles, each policy.

    python3 bench/bench_compare.py [TRACE] [--policy P ...]     # default: bench/out/gb.etl

Prints wall and CPU seconds per phase and the process's peak RSS after each (the figures of
issue 5: three policies on a 1 GB trace within 60 s). Build the trace first with
bench/make_gb_trace.py.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICIES = ["always:8", "paging:8", "examine:8:paging OR major = 4"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Phase:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        print(f"{self.name:28} {time.perf_counter() - self.t:7.1f} s wall "
              f"{time.process_time() - self.c:7.1f} s CPU   peak RSS {_peak_mb():,.0f} MB",
              file=sys.stderr)


def main() -> None:
    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers.api import ReadOptions, read_inputs
    from fpreplay.replay import whatif

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=ROOT / "bench" / "out" / "gb.etl")
    ap.add_argument("--policy", action="append")
    args = ap.parse_args()
    policies = args.policy or DEFAULT_POLICIES
    t0 = time.perf_counter()
    with _Phase("read_inputs"):
        read = read_inputs([args.trace], ReadOptions())
    print(f"  {read.records:,} records, {read.events.height:,} event rows, "
          f"{read.events.estimated_size() / 2**20:,.0f} MB table", file=sys.stderr)
    with _Phase("build_lifecycles"):
        irps = build_lifecycles(read.events, read.diagnostics)
    print(f"  {irps.height:,} IRPs", file=sys.stderr)
    with _Phase(f"compare ({len(policies)} policies)"):
        cmp = whatif.compare(irps, policies, events=read.events)
    for s in cmp.summaries:
        print(f"  {s['policy']:32} rescued {s['rescued']:,} parked {s['parked']:,}",
              file=sys.stderr)
    print(f"total {time.perf_counter() - t0:.1f} s, peak RSS {_peak_mb():,.0f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
