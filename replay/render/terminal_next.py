"""What to do next: each command ends on the command a user would run next, with their own
inputs and options (`args`, as typed), so the answer to "so what now?" can be pasted; and the
recommendation, given by the one rule of replay/whatif/recommend.py.

The texts carry their commands in backticks (the HTML report turns them into <code>);
`print_next` prints each command on a line of its own, never wrapped, so it pastes whole.
"""

from __future__ import annotations

import re
import shlex

from rich.console import Console

from fpreplay.replay import whatif
from fpreplay.units import format_duration_ns as fmt_duration


def _kind_arg(kind: str) -> str:
    return "" if kind == "always" else f" --kind {shlex.quote(kind)}"


def _policy_arg(policy: str) -> str:
    return shlex.quote(policy)


def next_analyze(doc: dict, args: str) -> str:
    a = doc["actual"]
    if not doc["irps"]:
        return (f"None of its {doc['records']} records is an IRP dispatch or completion. Capture "
                "the kernel's disk I/O and driver events, or your driver's own provider (read it "
                "with --provider): `xperf -on PROC_THREAD+LOADER+DISK_IO+DISK_IO_INIT+"
                "DRIVERS`")
    failed = a["alloc_failed"] + a["refused"]
    if failed:
        return (f"Next: the smallest reserve with which none of these {failed} IRPs would have "
                f"failed or waited parked: `fpreplay sweep {args}` Each incident's story: "
                f"`fpreplay incidents {args}`")
    if a["reserved"]:
        return (f"Next: the reserve held ({a['reserved']} IRPs served from it). How a bigger or "
                f"smaller reserve changes parking: `fpreplay sweep {args}`")
    if doc["incidents"]:
        return ("Nothing failed for want of memory. The incident's timeline: "
                f"`fpreplay incidents {args}`")
    return ("Nothing failed for want of memory. What a reserve would do in a low-memory event "
            f"anyway: `fpreplay sweep {args} --memory fail-all`")


def recommendation_of(doc: dict) -> whatif.Recommendation:
    """The document's recommendation (the CLI computes it with whatif.recommend), else the rule
    over its compared rows alone."""
    rec = doc.get("recommendation")
    if rec is not None:
        return whatif.Recommendation(rec["kind"], rec["reserved"], rec["budget_ns"],
                                     rec["trade_off"])
    return whatif.from_comparison(doc["policies"])


NO_RESERVE_NEEDED = ("No reserve needed: no IRP of the trace waited for a request object, so "
                     "no reserved request would have been used.")


def _size_rule(budget_ns: int | None) -> str:
    if budget_ns is None:
        return "the smallest reserve at which no IRP waits parked"
    return f"the smallest reserve whose p99 park wait fits {fmt_duration(budget_ns)}"


def trade_off_line(rec: whatif.Recommendation) -> str:
    """Reserve size against parked IRPs and their p99 park wait, for the sizes compared or
    swept of the recommended kind."""
    parts = []
    for t in rec.trade_off:
        name = whatif.policy_text(rec.kind, t["reserved"])
        parts.append(f"{name} parks {t['parked']}" + (
            f" (p99 wait {fmt_duration(t['park_wait_p99_ns'])})" if t["parked"] else ""))
    return "Trade-off: " + "; ".join(parts) + "." if parts else ""


def _still_fails(row: dict, kind: str) -> str:
    if not row["still_failed"]:
        return ""
    why = []
    if row["invalid_state"]:   # no reserve helps an IRP a purged or stopped queue refuses
        why.append(f"{row['invalid_state']} invalid state: the queue was purged or stopped")
    if kind == "paging":
        why.append("paging:N refuses what is not paging I/O: try --policy always:N")
    return f", still fails {row['still_failed']}" + (f" ({'; '.join(why)})" if why else "")


def compare_summary(doc: dict, args: str, with_next: bool = True) -> str:
    """The recommendation over a comparison, its trade-off and, with_next, the sweep that shows
    every size (the report, which holds the sweep already, leaves that out)."""
    a = doc["actual"]
    failed = a["alloc_failed"] + a["refused"]
    rec = recommendation_of(doc)
    if rec.kind is None:
        return "No policy with a reserve was compared; add e.g. --policy always:8."
    clean = all(not r["regressed"] and not r["parked"] for r in doc["policies"])
    if not failed and not a["reserved"] and clean:
        if doc["memory"] != "observed":
            return (f"Under --memory {doc['memory']} every policy serves every IRP without "
                    "parking.")
        return ("Nothing failed for want of memory, so no policy had anything to rescue. To "
                "compare them in a low-memory event: add --memory fail-all.")
    mine = [r for r in doc["policies"] if whatif.reserve_kind(r["policy"]) == rec.kind]
    row = next((r for r in mine if r["policy"] == rec.policy),
               min(mine, key=lambda r: (r["parked"], r["reserve_high_water"])))
    sweep = f"`fpreplay sweep {args}{_kind_arg(rec.kind)}`"
    if rec.reserved == 0:
        return NO_RESERVE_NEEDED
    if rec.reserved is None:
        head = (f"No {rec.kind} reserve compared serves without parking ({row['policy']} parks "
                f"{row['parked']}).")
        return head + (f" Next: the smallest that does: {sweep}" if with_next else "")
    others = len({whatif.reserve_kind(r["policy"]) for r in doc["policies"]} - {None}) > 1
    head = (f"Recommended: {rec.policy}: {_size_rule(rec.budget_ns)}"
            + (f", of the kind that leaves the fewest IRPs failing ({rec.kind})" if others
               else "") + ". ")
    if failed:
        head += (f"{row['policy']} rescues {row['rescued']} of {failed} failed IRPs, regresses "
                 f"{row['regressed']}")
    else:   # nothing failed for real: what matters is what a policy breaks or delays
        head += f"{row['policy']} regresses {row['regressed']}"
    head += (_still_fails(row, rec.kind)
             + (f", with at most {row['reserve_high_water']} reserved requests in use"
                if not row["parked"] else "") + ". " + trade_off_line(rec))
    if not with_next:
        return head
    return (head + " Next: every size's trade-off (add --budget 2ms to size for a p99 park "
            f"wait of 2 ms instead): {sweep}")


def over_seeds(doc: dict, key: str) -> str:
    """' (over the seeds: 3–6)' after a sweep answer whose seeds disagree; None is 'none'."""
    from fpreplay.replay.render.terminal import spread

    text = spread((doc.get("range") or {}).get(key),
                  lambda v: "none" if v is None else str(v))
    return f" (over the seeds: {text})" if text else ""


def sweep_recommendation(doc: dict) -> str:
    """The sweep's answer under the one rule, in words."""
    rec = doc["recommendation"]
    key = "min_reserved_within_budget" if doc["budget_ns"] is not None \
        else "min_reserved_no_park"
    if rec["reserved"] == 0:
        return NO_RESERVE_NEEDED
    if rec["policy"] is None:
        return (f"No {doc['kind']} reserve up to {doc['max_reserved']} meets the rule "
                f"({_size_rule(doc['budget_ns'])}).")
    return (f"Recommended: {rec['policy']}, {_size_rule(doc['budget_ns'])}"
            f"{over_seeds(doc, key)}.")


def next_sweep(doc: dict, args: str) -> str | None:
    kind = doc["kind"]
    if doc["peak_demand"] == 0 and doc["memory"] == "observed":
        return f"Next: a low-memory event forced: `fpreplay sweep {args}{_kind_arg(kind)} " \
               "--memory fail-all`"
    rec = doc["recommendation"]
    if rec["policy"] is None:
        return (f"No reserve up to {doc['max_reserved']} does it. Next: "
                f"`fpreplay sweep {args}{_kind_arg(kind)} --max {2 * doc['max_reserved']}`")
    row = next((r for r in doc["rows"] if r["reserved"] == rec["reserved"]), None)
    tail = ""
    if row is not None and row["still_failed"] and kind == "paging":
        tail = (f" ({row['still_failed']} IRPs still fail: they are not paging I/O; "
                "--kind always sizes a reserve for them too)")
    return (f"Next: {rec['policy']} replayed IRP by IRP (add -o per-irp.csv or --explain "
            f"IRP){tail}: `fpreplay compare {args} --policy {_policy_arg(rec['policy'])}`")


def next_incidents(doc: dict, args: str) -> str | None:
    """Point at the first deciding IRP some policy treats differently: its story is the one a
    support engineer retells."""
    from fpreplay.replay.render.terminal import fmt_irp

    for i in doc["incidents"]:
        for r in i["irp_list"]:
            for p in doc["policies"]:
                if r["policies"][p]["verdict"] in ("rescued", "regressed") \
                        and whatif.reserve_kind(p):
                    return (f"Next: how {p} treats the first IRP it changes: `fpreplay compare "
                            f"{args} --policy {_policy_arg(p)} --explain {fmt_irp(r['irp'])}`")
    return None


def print_next(out: Console, text: str | None) -> None:
    """The advice, its prose wrapped to the terminal and each `command` on a line of its own,
    never wrapped (so it pastes whole, however narrow the terminal)."""
    if not text:
        return
    for k, part in enumerate(re.split(r"`([^`]*)`", text)):
        if k % 2:
            out.print("  " + part, style="bold", markup=False, soft_wrap=True)
        else:
            part = part.strip().lstrip(".;, ").strip()
            if part:
                out.print(part, style="bold", markup=False)
