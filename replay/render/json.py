"""The JSON documents of contract section 7, built once per command.

The terminal tables (render/terminal.py) and the HTML report (render/html.py) are drawn from these same
dicts, so a number means the same thing, and is the same, wherever a user reads it. Each document
validates against docs/schemas/<command>.schema.json.
"""

from __future__ import annotations

import polars as pl

from fpreplay.lifecycles.broken import NO_OPERATION_END
from fpreplay.replay import whatif
from fpreplay.schema import ACTUAL_OUTCOMES, FAILED_ACTUALS, STARVED_ACTUALS

# How many never-completed IRPs and deciding IRPs a document lists by address.
LIST_LIMIT = 50
# Time bins of an incident's timeline.
INCIDENT_BINS = 10


def _irp_ref(r: dict) -> dict:
    return {"irp": r.get("irp"), "arrive_ns": r.get("arrive_ns"), "device": r.get("device"),
            "queue": r.get("queue"), "major": r.get("major"), "paging": r.get("paging"),
            "actual": r.get("actual")}


def breakdown(irps: pl.DataFrame, by: str) -> list[dict]:
    """Actual outcomes per device, queue or major function, biggest first."""
    if not irps.height:
        return []
    g = (irps.group_by(pl.col(by).cast(pl.String).fill_null("(default)" if by == "queue"
                                                             else "(unknown)").alias("name"))
         .agg(pl.len().alias("irps"),
              *[(pl.col("actual") == a).sum().alias(a) for a in ACTUAL_OUTCOMES])
         .sort(["irps", "name"], descending=[True, False]))
    return [{"name": r["name"], "irps": int(r["irps"]),
             "actual": {a: int(r[a]) for a in ACTUAL_OUTCOMES}} for r in g.iter_rows(named=True)]


def incident_dict(inc: dict) -> dict:
    share = inc.get("paging_share")
    return {
        "incident": int(inc["incident"]), "start_ns": int(inc["start_ns"]),
        "end_ns": int(inc["end_ns"]), "duration_ns": int(inc["end_ns"] - inc["start_ns"]),
        "alloc_failed": int(inc["alloc_failed"]), "refused": int(inc["refused"]),
        "reserved": int(inc["reserved"]),
        "insufficient_resources": int(inc["insufficient_resources"]),
        "memory_pressure": int(inc["memory_pressure"]),
        "min_available_bytes": inc.get("min_available_bytes"),
        "irps": int(inc["irps"]), "failed_irps": int(inc["failed_irps"]),
        "devices": list(inc["devices"] or []), "queues": list(inc["queues"] or []),
        "paging_share": None if share is None else round(float(share), 4),
    }


def never_completed_cause(irps_without_op_end: int, incomplete: int) -> str:
    """Why IRPs never completed, when the trace says why: file-system IRPs in a trace captured
    without the operation-end events (lifecycles.broken.NO_OPERATION_END)."""
    if not irps_without_op_end:
        return ""
    which = ("" if irps_without_op_end == incomplete
             else f"{irps_without_op_end} of them are file-system IRPs: ")
    return (f" ({which}the trace has no FileIo/Kernel-File operation-end events, the OP_END "
            "keyword was off when it was captured, so no file-system IRP shows a completion)")


def verdict_line(irps: pl.DataFrame, actual: dict, incidents: pl.DataFrame,
                 events_lost: int, irps_without_op_end: int = 0) -> str:
    failed = sum(actual[a] for a in FAILED_ACTUALS)
    n = irps.height
    lost = f"; {events_lost} events lost" if events_lost else ""
    if not n:
        head = "No IRP in this trace: nothing to say about low memory"
    elif not incidents.height:
        head = (f"No low-memory incident: {n} IRP{'s' if n != 1 else ''}, none failed for want "
                "of memory")
    else:
        k = incidents.height
        head = (f"{k} low-memory incident{'s' if k != 1 else ''}: {failed} of {n} IRPs failed "
                f"for want of memory (alloc_failed {actual['alloc_failed']}, refused "
                f"{actual['refused']}), {actual['reserved']} served from the reserve")
    incomplete = actual["incomplete"]
    never = (f"; {incomplete} never completed"
             + never_completed_cause(irps_without_op_end, incomplete) if incomplete else "")
    return head + never + lost + "."


def analyze_document(read, irps: pl.DataFrame, incidents: pl.DataFrame) -> dict:
    actual = whatif.actual_counts(irps)
    ev = read.events
    # Several inputs (a kernel .etl and the driver's IFR dump) evidence the same failures: count
    # each kind in the input that saw most of it rather than adding the inputs up.
    kinds = (dict(ev.group_by("kind", "source").len().group_by("kind").agg(pl.col("len").max())
                  .iter_rows()) if ev.height else {})
    never = irps.filter(pl.col("actual") == "incomplete").sort("arrive_ns")
    return {
        "schema": "fpreplay.analyze/1",
        "inputs": list(read.inputs),
        "verdict": verdict_line(irps, actual, incidents, read.events_lost,
                                read.diagnostics.counters.get(NO_OPERATION_END, 0)),
        "events": int(read.event_rows),
        "records": int(read.records),
        "events_lost": int(read.events_lost),
        "buffers_lost": int(getattr(read, "buffers_lost", 0)),
        "irps": int(irps.height),
        "actual": actual,
        "by_device": breakdown(irps, "device"),
        "by_queue": breakdown(irps, "queue"),
        "by_major": breakdown(irps, "major"),
        "incidents": [incident_dict(i) for i in incidents.iter_rows(named=True)],
        "forward_progress": {
            "reserved_request_used": int(kinds.get("reserved_request_used", 0)),
            "fp_policy_refused": int(kinds.get("fp_policy_refused", 0)),
            "request_alloc_failed": int(kinds.get("request_alloc_failed", 0)),
            "request_resources_failed": int(kinds.get("request_resources_failed", 0)),
            "memory_pressure": int(kinds.get("memory_pressure", 0)),
            "reserved_irps": actual["reserved"], "refused_irps": actual["refused"],
        },
        "never_completed": {"count": int(never.height),
                            "irps": [_irp_ref(r) for r in never.head(LIST_LIMIT)
                                     .iter_rows(named=True)]},
        "warnings": list(read.diagnostics.warnings),
    }


def compare_document(inputs: list[str], memory: str, cmp: whatif.Comparison,
                     warnings: list[str], explain: list[dict] | None = None,
                     recommendation: whatif.Recommendation | None = None) -> dict:
    """recommendation: whatif.recommend over `cmp` (the one rule, recommend.py)."""
    doc = {
        "schema": "fpreplay.compare/1",
        "inputs": list(inputs),
        "memory": memory,
        "irps": int(cmp.irps),
        "actual": cmp.actual,
        "observed": cmp.observed,
        "policies": cmp.summaries,
        "warnings": list(warnings) + [w for w in cmp.warnings if w not in warnings],
    }
    if explain is not None:
        doc["explain"] = explain
    if recommendation is not None:
        doc["recommendation"] = recommendation.as_dict()
    return _seeded(doc, cmp.seeds)


def _seeded(doc: dict, seeds: list[int]) -> dict:
    """With several seeds run (verifier-random without a seed), the document lists them; each
    figure then is the median over them, with its range beside it."""
    return {**doc, "seeds": list(seeds)} if seeds else doc


def sweep_document(inputs: list[str], memory: str, s: whatif.Sweep, warnings: list[str]) -> dict:
    doc = {
        "schema": "fpreplay.sweep/1",
        "inputs": list(inputs),
        "memory": memory,
        "kind": s.kind,
        "max_reserved": s.max_reserved,
        "peak_demand": s.peak_demand,
        "rows": whatif.sweep_rows(s),
        "min_reserved_no_park": s.min_reserved_no_park,
        "budget_ns": s.budget_ns,
        "min_reserved_within_budget": s.min_reserved_within_budget,
        "warnings": list(warnings) + [w for w in s.warnings if w not in warnings],
    }
    doc["recommendation"] = whatif.recommend_size(s).as_dict()
    if s.seeds:
        doc["range"] = s.ranges
    return _seeded(doc, s.seeds)


def _step_max(tl: pl.DataFrame | None, col: str, lo: int, hi: int) -> int:
    """Largest value of a step series over [lo, hi]: the value carried in, and every change."""
    if tl is None or not tl.height:
        return 0
    before = tl.filter(pl.col("ts_ns") < lo).tail(1)[col]
    inside = tl.filter(pl.col("ts_ns").is_between(lo, hi))[col]
    vals = pl.concat([before.cast(pl.Int64), inside.cast(pl.Int64)])
    return int(vals.max() or 0) if vals.len() else 0


def incident_bins(inc: dict) -> list[tuple[int, int]]:
    """The (lo, hi) of an incident's timeline bins: INCIDENT_BINS equal steps."""
    start, end = int(inc["start_ns"]), int(inc["end_ns"])
    bins = INCIDENT_BINS if end > start else 1
    width = max(1, -(-(end - start + 1) // bins))
    out = []
    for b in range(bins):
        lo = start + b * width
        hi = min(end, lo + width - 1) if b < bins - 1 else end
        if lo > end:
            break
        out.append((lo, hi))
    return out


def incident_timeline(inc: dict, irps_inside: pl.DataFrame, step_max, policies: list[str]
                      ) -> list[dict]:
    """The incident cut into equal time bins: failures that arrived, and per policy the most
    reserved requests in use and the deepest parked list. step_max(policy, column, lo, hi):
    a timeline's largest value over a bin (policy None: outstanding IRPs as traced)."""
    out = []
    for lo, hi in incident_bins(inc):
        arrived = irps_inside.filter(pl.col("arrive_ns").is_between(lo, hi))
        out.append({
            "start_ns": lo, "end_ns": hi,
            "arrived": int(arrived.height),
            "failed": int(arrived["actual"].is_in(STARVED_ACTUALS).sum()) if arrived.height
            else 0,
            "outstanding": step_max(None, "outstanding", lo, hi),
            "policies": {p: {"reserved_in_use": step_max(p, "reserved_in_use", lo, hi),
                             "parked": step_max(p, "parked", lo, hi)}
                         for p in policies},
        })
    return out


def incidents_document(inputs: list[str], memory: str, cmp: whatif.Comparison,
                       incidents: pl.DataFrame, per_incident: list[dict],
                       warnings: list[str], step_max=None) -> dict:
    """step_max: as incident_timeline takes it (default: from cmp's whole timelines; cmp's
    per_irp then need hold only the IRPs that arrived inside the incidents)."""
    if step_max is None:
        totals = {p: cmp.total(p) for p in cmp.policies}
        actual_tl = whatif.actual_timeline(cmp.per_irp)

        def step_max(p, col, lo, hi):
            return _step_max(actual_tl if p is None else totals[p], col, lo, hi)
    items = []
    for entry in per_incident:
        inc = entry["incident"]
        inside = cmp.per_irp.filter(pl.col("arrive_ns").is_between(inc["start_ns"],
                                                                   inc["end_ns"]))
        deciding = entry["irps"]
        irps_list = []
        # The IRPs some policy treats differently come first (a list cut at LIST_LIMIT would
        # otherwise show only the first minutes, often IRPs every policy serves the same way).
        changed = pl.any_horizontal([pl.col(f"{p}:verdict").is_in(["rescued", "regressed"])
                                     for p in cmp.policies]) if cmp.policies else pl.lit(False)
        deciding = (deciding.with_columns(changed.fill_null(False).alias("_changed"))
                    .sort(["_changed", "arrive_ns"], descending=[True, False],
                          maintain_order=True).drop("_changed"))
        for r in deciding.head(LIST_LIMIT).iter_rows(named=True):
            ref = _irp_ref(r)
            ref["policies"] = {p: {"outcome": r[f"{p}:outcome"], "verdict": r[f"{p}:verdict"],
                                   "park_wait_ns": r[f"{p}:park_wait_ns"]}
                               for p in cmp.policies}
            irps_list.append(ref)
        items.append({**incident_dict(inc),
                      "timeline": incident_timeline(inc, inside, step_max, cmp.policies),
                      "observed": entry["observed"],
                      "policies": entry["policies"],
                      "deciding_irps": int(deciding.height),
                      "irp_list": irps_list})
    return _seeded({
        "schema": "fpreplay.incidents/1",
        "inputs": list(inputs),
        "memory": memory,
        "policies": list(cmp.policies),
        "incidents": items,
        "warnings": list(warnings) + [w for w in cmp.warnings if w not in warnings],
    }, cmp.seeds)
