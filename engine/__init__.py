"""The forward-progress queue engine: KMDF's reserved-request queue, replayed.

Two levels:

* `simulate(irps, driver, memory, ...)` replays an IRP lifecycle table (fpreplay.irps/1) under a
  policy and a memory model and returns per-IRP outcomes, a per-queue timeline and the reserve
  high-water mark. Policies come from `parse_policy`, memory models from `parse_memory`, the
  driver (queues, routing, dispatch types) from `load_driver_model`.
* `Simulator(driver, memory, facts=survey(chunks), ...)` is the same replay fed the table a chunk
  at a time (`feed(chunk)` -> the outcomes settled so far, `finish()` -> the SimulationResult), in
  memory bounded by the IRPs still open, not by the trace.
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
>>> for row in result.outcomes.select("row", "outcome", "deliver_ns", "park_wait_ns",
...                                   "reserved_id").rows():
...     print(row)
(0, 'reserved', 0, None, 0)
(1, 'reserved', 100, None, 1)
(2, 'parked_reserved', 1000000, 999800, 0)
(3, 'normal', 300, None, None)
>>> result.reserve_high_water
{'default': 2}

Without a forward-progress policy the same failures complete STATUS_INSUFFICIENT_RESOURCES:

>>> none = simulate(irps, load_driver_model(None), parse_memory("observed"))
>>> none.outcomes["outcome"].to_list()
['alloc_failed', 'alloc_failed', 'alloc_failed', 'normal']

Decisions where the contract is silent:

* `--policy` with a multi-queue config replaces the policy of every queue whose `fp_capable` is
  true (the default); `fp_capable = false` keeps a queue out of the what-if.
* Routing: with one queue it receives every IRP; with several, an IRP whose `queue` names a
  configured queue goes there, else the major-function table, else the default queue. Queue
  operations naming an unknown queue are ignored with a warning (one-queue model: applied to it).
* Devices: every value of the lifecycle table's `device` column (null: one unnamed device) is one
  KMDF device with its own instance of the driver model's queues, reserved pools, parked lists,
  queue states and verifier generator (forward-progress.md 3.7). Each device's generator (and
  `random:P`'s) starts from the same seed, so a device replays the same alone or with others;
  IRPs the trace never saw served get the median hold of their own device. With several devices
  the timeline's `queue` and reserve_high_water's keys are "DEVICE/QUEUE" ("(unnamed)/QUEUE").
  A queue operation acts on its own device; one naming no device goes to the unnamed or the only
  device, else is ignored with a warning.
* Only READ, WRITE, DEVICE_CONTROL and INTERNAL_DEVICE_CONTROL reach a queue: every other major
  keeps what the trace saw (outcome from `actual`, observed completion and status, queue null)
  under any policy and memory model, spends no draw and is not counted in the timeline. An IRP
  without a major is replayed as I/O (warned). An IRP_MJ_CLEANUP with a `file_object` cancels its
  file object's parked and queued IRPs on its device at its arrival.
* A policy the framework refuses to assign (a KMDF 1.9 driver's queue outside the dispatch table;
  a failing pre-allocation callback) leaves the queue without forward progress, with a warning.
* Memory `observed`: allocation fails for `actual` in alloc_failed/refused/reserved; `fail-all` and
  `verifier-random` inject on top of that, only on forward-progress queues, never for creates
  (verifier-random draws once per real successful allocation, in arrival order, one generator per
  device); `random:P` and `window` replace the observed failures; `window` needs incidents.
* An IRP the trace saw cancelled that parks in the replay is cancelled (STATUS_CANCELLED) at its
  observed completion time if still parked then, as the I/O manager's cancel of a parked IRP
  (counted, warned). Under `paging:N`, an IRP without irp_flags and not marked paging is taken
  as non-paging (counted, warned).
* How long the driver holds a delivered IRP: complete_ns - deliver_ns where the trace shows the
  delivery (lifecycle extension column `deliver_ns`: a reserved_request_used event or the IFR
  presentation line), else its observed service_ns; for an IRP that waited parked in the trace
  service_ns would count the wait as driver time. IRPs the trace never saw served get the median
  of those hold times (same major, else all), as the contract says for service_ns.
* `alloc_failure` "inferred" (a STATUS_INSUFFICIENT_RESOURCES completion with no framework
  message) is replayed like "request": a failed request allocation, as `actual` alloc_failed says.
* `alloc_failure` (lifecycle extension column) = "resources": the trace saw the driver's
  EvtIoAllocateRequestResources fail, not the allocation. Under observed, fail-all and
  verifier-random memory that failure is replayed only where the framework would call the
  callback: a forward-progress queue whose config sets `request_resources = true`, not for
  creates; there it takes the policy path exactly like a failed allocation (forward-progress.md
  4.1 step 5). Elsewhere the IRP keeps its ordinary request and a warning says so (the default
  driver model registers no callback, contract section 5). `random` and `window` replace it.
* A delivered IRP completes with its observed status if the trace saw it served, else
  STATUS_SUCCESS; an IRP the trace never saw complete (`incomplete`) holds its request forever.
* Simultaneous events: completions, then queue operations, then arrivals; ties in input order.
* An IRP bound to a request but never presented (its queue stopped or blocked to the end) keeps
  outcome normal/reserved/parked_reserved with deliver_ns null; a parked IRP never served is
  `parked_at_end`. The Examine SQL treats null as "fail".
* The replay's driver (in simulated runs) retrieves everything from a manual queue when notified,
  completes cancelable requests with STATUS_CANCELLED when cancelled, and treats the trace's
  allocation failures as failed allocations (EvtIoAllocateRequestResources succeeds unless the
  trace saw it fail, see above).
"""

from fpreplay.units import parse_duration_ns  # the one duration grammar; callers import it here

from .config import (DriverModel, MemoryModel, Policy, QueueModel, examine_verdicts,
                     load_driver_model, parse_memory, parse_policy)
from .inputs import lcg_fail_mask, route_queues
from .model import BugCheck, Device, ForwardProgressPolicy, Irp, Queue, Request
from .outcomes import OUTCOMES, SimulationResult, simulated_actual
from .facts import SURVEY_COLUMNS, TraceFacts, survey, survey_columns
from .simulation import Simulator, chunked, simulate

__all__ = [
    "Policy", "parse_policy", "MemoryModel", "parse_memory", "DriverModel", "QueueModel",
    "load_driver_model", "route_queues", "simulate", "SimulationResult", "parse_duration_ns",
    "examine_verdicts", "OUTCOMES", "Device", "Queue", "Irp", "Request", "ForwardProgressPolicy", "BugCheck",
    "lcg_fail_mask", "simulated_actual", "Simulator", "survey", "survey_columns", "TraceFacts",
    "SURVEY_COLUMNS", "chunked",
]
