"""Shared setup of the forward-progress edge-case tests (test_engine_edge_cases*.py): a device
with one forward-progress queue, starved IRPs, and what the device's log says.

R1..Rn are pool members in creation order ("A.R1", ...); A, B, C... are IRPs in arrival order.
Unless a test says otherwise: queue accepting and dispatching, verifier off, bound version 1.33.
"""

from __future__ import annotations

from fpreplay.engine.model import PARALLEL, Device, ForwardProgressPolicy, Irp
from fpreplay.engine.status import POLICY_ALWAYS, STATUS_SUCCESS

READ, WRITE, FSCTL, CREATE = 0x03, 0x04, 0x0D, 0x00


def fp_queue(n=2, policy=POLICY_ALWAYS, dispatch=PARALLEL, limit=None, examine=None,
             res=None, req=None, name="A", **device_kw):
    dev = Device(**device_kw)
    q = dev.create_queue(name, dispatch, limit, default=True)
    status = q.assign_forward_progress(ForwardProgressPolicy(n, policy, examine, res, req))
    assert status == STATUS_SUCCESS
    return dev, q


def starved(name, major=READ, **kw):
    """An IRP whose normal request allocation fails (alloc✗)."""
    return Irp(name, major, alloc_ok=False, **kw)


def events(dev, kind):
    return [e[1:] for e in dev.log if e[0] == kind]


def presented(dev):
    """IRP ids in presentation order."""
    return [e[3] for e in dev.log if e[0] in ("present", "retrieve")]


def completions(dev):
    return [(e[1], e[2]) for e in dev.log if e[0] == "complete"]


def ids(requests):
    return [r.id for r in requests]


def traced(dev, text):
    return any(text in t for t in dev.traces)


def presented_request(dev, q, irp_id):
    return next(r for r in q.driver_owned if r.irp.id == irp_id)


def arrive_starved(q, *names):
    """Starved IRPs of these names, arrived on `q` in this order."""
    irps = [starved(name) for name in names]
    for irp in irps:
        q.arrive(irp)
    return irps
