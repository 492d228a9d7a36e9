"""The forward-progress queue engine: KMDF's reserved-request queue, replayed.

Two levels:

* `simulate(irps, driver, memory, ...)` replays an IRP lifecycle table (fpreplay.irps/1) under a
  policy and a memory model and returns per-IRP outcomes, a per-queue timeline and the reserve
  high-water mark. Policies come from `parse_policy`, memory models from `parse_memory`, the
  driver (queues, routing, dispatch types) from `load_driver_model`.
* `Device` / `Queue` / `Irp` (fpreplay.engine.model) is the framework itself, driven event by
  event: arrive, complete, forward, requeue, purge, stop, start, drain, delete...; it follows
  ../shared/design/forward-progress.md and is what the edge-case tests drive.

Example: a default queue with two reserved requests; three IRPs arrive while memory is short
(their allocation failed in the trace), each held 1 ms by the driver.

>>> import polars as pl
>>> from fpreplay.engine import (parse_policy, parse_memory, load_driver_model, simulate,
...                              parse_duration_ns)
>>> irps = pl.DataFrame({
...     "irp": [1, 2, 3, 4], "major": [3, 3, 3, 4],
...     "arrive_ns": [0, 100, 200, 300],
...     "complete_ns": [None, None, None, 1_300], "service_ns": [None, None, None, 1_000],
...     "status": [0xC000009A, 0xC000009A, 0xC000009A, 0],
...     "actual": ["alloc_failed", "alloc_failed", "alloc_failed", "ok"]})
>>> driver = load_driver_model(None, parse_policy("always:2"))
>>> result = simulate(irps, driver, parse_memory("observed"),
...                   service_time_ns=parse_duration_ns("1ms"))
>>> result.outcomes.select("row", "outcome", "deliver_ns", "park_wait_ns", "reserved_id").rows()
[(0, 'reserved', 0, None, 0), (1, 'reserved', 100, None, 1), (2, 'parked_reserved', 1000000, 999800, 0), (3, 'normal', 300, None, None)]
>>> result.reserve_high_water
{'default': 2}

Without a forward-progress policy the same failures complete STATUS_INSUFFICIENT_RESOURCES:

>>> none = simulate(irps, load_driver_model(None), parse_memory("observed"))
>>> none.outcomes["outcome"].to_list()
['alloc_failed', 'alloc_failed', 'alloc_failed', 'normal']
"""

from .config import (DriverModel, MemoryModel, Policy, QueueModel, examine_verdicts,
                     load_driver_model, parse_duration_ns, parse_memory, parse_policy)
from .model import BugCheck, Device, ForwardProgressPolicy, Irp, Queue, Request
from .simulate import OUTCOMES, SimulationResult, lcg_fail_mask, simulate, simulated_actual

__all__ = [
    "Policy", "parse_policy", "MemoryModel", "parse_memory", "DriverModel", "QueueModel",
    "load_driver_model", "simulate", "SimulationResult", "parse_duration_ns", "examine_verdicts",
    "OUTCOMES", "Device", "Queue", "Irp", "Request", "ForwardProgressPolicy", "BugCheck",
    "lcg_fail_mask", "simulated_actual",
]
