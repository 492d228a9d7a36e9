"""Where `fpreplay compare` spends its time on a big trace: read, lifecycles, each policy.

    python3 bench/bench_compare.py [TRACE] [--policy P ...]     # default: bench/out/gb.etl

Prints wall and CPU seconds per phase and the process's peak RSS after each. Reading and
building lifecycles run interleaved (the reader's batches stream into the lifecycles): one phase,
with the reader's share of its CPU time. bench/bench_scale.py gives the curve against size. Build the trace first with
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


class _ReaderClock:
    """An InputStream whose batches are timed (CPU seconds spent producing them)."""

    def __init__(self, stream):
        object.__setattr__(self, "stream", stream)
        object.__setattr__(self, "cpu", 0.0)

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __iter__(self):
        it = iter(self.stream)
        while True:
            c = time.process_time()
            batch = next(it, None)
            object.__setattr__(self, "cpu", self.cpu + time.process_time() - c)
            if batch is None:
                return
            yield batch


def main() -> None:
    from fpreplay.lifecycles import read_lifecycles
    from fpreplay.parsers.api import InputStream, ReadOptions
    from fpreplay.replay import whatif

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=ROOT / "bench" / "out" / "gb.etl")
    ap.add_argument("--policy", action="append")
    args = ap.parse_args()
    policies = args.policy or DEFAULT_POLICIES
    t0 = time.perf_counter()
    with _Phase("read + lifecycles (streamed)"):
        stream = _ReaderClock(InputStream([args.trace], ReadOptions()))
        read, irps = read_lifecycles(stream)
    print(f"  {read.records:,} records, {read.event_rows:,} event rows ({read.events.height:,} "
          f"kept beside the lifecycles), {irps.height:,} IRPs; reader {stream.cpu:.1f} s CPU, "
          "the rest lifecycles", file=sys.stderr)
    with _Phase(f"compare ({len(policies)} policies)"):
        cmp = whatif.compare(irps, policies, events=read.events)
    for s in cmp.summaries:
        print(f"  {s['policy']:32} rescued {s['rescued']:,} parked {s['parked']:,}",
              file=sys.stderr)
    print(f"total {time.perf_counter() - t0:.1f} s, peak RSS {_peak_mb():,.0f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
