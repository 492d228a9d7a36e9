"""What a trace cannot tell, as the what-if's own warnings (issue 9): each says what was assumed
and for how many. The lifecycles and the engine warn about what they decide themselves; these
need what only a what-if command knows (the driver config, the seeds it runs)."""

from __future__ import annotations

import polars as pl

from fpreplay.engine import route_queues
from fpreplay.replay.whatif.settings import WhatIfSettings
from fpreplay.schema import IO_QUEUE_MAJORS


def seeds_warning(settings: WhatIfSettings) -> list[str]:
    """Under verifier-random without a seed: which seeds were run in its place."""
    seeds = settings.seeds
    if not seeds:
        return []
    return [f"the verifier's random seed (the tick count at device start) is in no trace: "
            f"{len(seeds)} runs, seeds {', '.join(map(str, seeds))}; every figure is their median "
            "with its range (give a seed for one run)"]


def apply_inferred(irps: pl.DataFrame, settings: WhatIfSettings) -> tuple[pl.DataFrame, int]:
    """IRPs taken as allocation failures from their STATUS_INSUFFICIENT_RESOURCES completion
    alone (alloc_failure "inferred") on a queue the driver config gives a forward-progress
    policy: the framework never completes an I/O-queue IRP so there (forward-progress.md 2), so
    the trace's driver failed them itself. As contract section 4 says, they are `failed` (no
    longer allocation failures); returns the table so, and how many (row by row: a chunk of
    the table at a time gives the same)."""
    driver = settings.driver
    with_policy = [q.name for q in driver.queues if q.policy.forward_progress]
    if not with_policy or "alloc_failure" not in irps.columns or not irps.height:
        return irps, 0
    on_queue = route_queues(irps, driver).is_in(with_policy)
    mine = ((pl.col("alloc_failure") == "inferred")
            & pl.col("major").is_in(IO_QUEUE_MAJORS).fill_null(True) & pl.lit(on_queue))
    n = irps.select(mine.sum()).item()
    if not n:
        return irps, 0
    return irps.with_columns(
        pl.when(mine).then(pl.lit("failed")).otherwise(pl.col("actual")).alias("actual"),
        pl.when(mine).then(pl.lit(None, pl.String)).otherwise(pl.col("alloc_failure"))
        .alias("alloc_failure")), n


def inferred_warning(settings: WhatIfSettings, n: int) -> list[str]:
    """apply_inferred's warning (ambiguous), for n IRPs over the whole table."""
    if not n:
        return []
    driver = settings.driver
    with_policy = [q.name for q in driver.queues if q.policy.forward_progress]
    return [
        f"{n} IRP(s) completed with STATUS_INSUFFICIENT_RESOURCES and no framework message reach "
        f"a queue with a forward-progress policy in {driver.source} ({', '.join(with_policy)}), "
        "where the framework never completes an IRP so: taken as the driver's own failures "
        "(actual 'failed', ambiguous), not replayed as allocation failures"]


def inferred_on_policy_queues(irps: pl.DataFrame, settings: WhatIfSettings
                              ) -> tuple[pl.DataFrame, list[str]]:
    """apply_inferred over a whole table, with its warning."""
    irps, n = apply_inferred(irps, settings)
    return irps, inferred_warning(settings, n)


def trace_cannot_tell(irps: pl.DataFrame, settings: WhatIfSettings
                      ) -> tuple[pl.DataFrame, list[str]]:
    """The IRPs as the what-if replays them, once what the driver config tells is applied, and
    the what-if's warnings about what it assumed, each with its count."""
    irps, inferred = inferred_on_policy_queues(irps, settings)
    return irps, [*seeds_warning(settings), *inferred]
