"""Engine speed: IRP arrivals per second per policy (issue 4 target: >= 500,000/s).

One million IRPs on the default queue (parallel, no limit), 5% of them starved of a request
object (`actual` = alloc_failed, so the observed memory model fails their allocation), the rest
served in 20-2000 us. Times `simulate()` end to end (input preparation, event loop, outcome and
timeline tables) for each policy, best of --repeat runs: wall clock, and CPU time of the process
(all threads), which is the fairer figure when other work shares the machine (load average shown).

    python3 bench/bench_engine.py [--irps 1000000] [--starved 0.05] [--repeat 3] [--reference]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

from fpreplay.engine import load_driver_model, parse_memory, parse_policy, simulate


def make_irps(n: int, starved: float, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    arrive = np.cumsum(rng.integers(200, 2_000, n)).astype(np.int64) + 1_700_000_000_000_000_000
    service = rng.integers(20_000, 2_000_000, n).astype(np.int64)
    fail = rng.random(n) < starved
    major = rng.choice(np.array([3, 4, 14], dtype=np.uint8), n)
    flags = np.where(rng.random(n) < 0.5, 0x43, 0x60000).astype(np.uint32)
    return pl.DataFrame({
        "irp": np.arange(n, dtype=np.uint64) * 0x40 + 0xFFFF800000000000,
        "major": major, "irp_flags": flags & ~np.uint32(0x000E0000),
        "paging": (flags & 2) != 0, "arrive_ns": arrive,
        "complete_ns": np.where(fail, arrive, arrive + service),
        "service_ns": pl.Series(np.where(fail, 0, service)).set(pl.Series(fail), None),
        "status": np.where(fail, 0xC000009A, 0).astype(np.uint32),
        "actual": np.where(fail, "alloc_failed", "ok"),
    }).with_columns(pl.when(pl.col("actual") == "alloc_failed").then(None)
                    .otherwise(pl.col("service_ns")).alias("service_ns"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--irps", type=int, default=1_000_000)
    ap.add_argument("--starved", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time the all-event-loop path")
    ap.add_argument("--policies", default="none,always:8,paging:8,examine:8:paging OR major = 4")
    args = ap.parse_args()
    irps = make_irps(args.irps, args.starved)
    memory = parse_memory("observed")
    print(f"{args.irps:,} IRPs, {args.starved:.0%} starved, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for text in args.policies.split(","):
        driver = load_driver_model(None, parse_policy(text))
        for fast in ([True, False] if args.reference else [True]):
            best = best_cpu = float("inf")
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                res = simulate(irps, driver, memory, fast=fast)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            counts = dict(sorted(res.outcomes["outcome"].value_counts().iter_rows()))
            print(f"{text:30s} {'fast' if fast else 'reference':9s} wall {best:6.2f} s "
                  f"{args.irps / best:11,.0f}/s  cpu {best_cpu:6.2f} s "
                  f"{args.irps / best_cpu:11,.0f}/s"
                  f"  high water {res.reserve_high_water['default']}  {counts}")


if __name__ == "__main__":
    main()
