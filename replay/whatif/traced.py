"""The policy the driver itself ran, as far as the trace (or the driver config) tells it.

A report sets every policy against what happened; the one the driver actually had belongs among
them, so a reader sees the replay reproduce the trace before trusting the other rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from fpreplay.engine import DriverModel
from fpreplay.replay.whatif.outcomes import concurrency_peak, reserved_deliveries


@dataclass(frozen=True)
class TracedPolicy:
    """policy: the policy text (None when the trace cannot tell); why: how it was found, in
    words a report prints next to it."""

    policy: str | None
    why: str


def traced_policy(irps: pl.DataFrame, driver: DriverModel | None = None) -> TracedPolicy:
    """The driver's own policy: the driver config's, when it names one; else read off the trace.

    From the trace: IRPs served from the reserve mean forward progress, with at least as many
    reserved requests as were ever in use at once (their high-water mark); refusals mean a policy
    that examines IRPs (taken as `paging`); allocation failures with neither mean `none`. Devices
    that disagree, or a trace with no allocation failure at all, leave it unknown."""
    configured = {q.policy.text for q in (driver.queues if driver else ())
                  if q.fp_capable and q.policy.kind != "none"}
    if len(configured) == 1:
        return TracedPolicy(configured.pop(), "the driver config's policy")
    if len(configured) > 1:
        return TracedPolicy(None, "the driver config gives its queues different policies ("
                            + ", ".join(sorted(configured)) + ")")
    found = {}
    device = pl.col("device") if "device" in irps.columns else pl.lit(None, pl.String)
    for (dev,), part in irps.with_columns(device.alias("_dev")).group_by(
            "_dev", maintain_order=True):
        actual = part["actual"]
        reserved, refused = int((actual == "reserved").sum()), int((actual == "refused").sum())
        if reserved:
            served = reserved_deliveries(part)
            n = max(1, concurrency_peak(served["deliver_ns"], served["complete_ns"]))
            found[dev] = f"{'paging' if refused else 'always'}:{n}"
        elif refused:
            found[dev] = "paging:1"
        elif int((actual == "alloc_failed").sum()):
            found[dev] = "none"
    policies = set(found.values())
    if not policies:
        return TracedPolicy(None, "no request allocation failed in the trace, so it does not "
                            "show the driver's policy (name it with --config)")
    if len(policies) > 1:
        return TracedPolicy(None, "devices show different policies (" + ", ".join(
            f"{d or '-'}: {p}" for d, p in found.items()) + "); a what-if applies one policy "
            "to every queue")
    policy = policies.pop()
    return TracedPolicy(policy, "read off the trace: " + (
        "allocations failed and nothing was served from a reserve" if policy == "none" else
        "the most reserved requests in use at once" + (", and refusals" if "paging" in policy
                                                        else "")))
