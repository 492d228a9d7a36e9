"""The one recommendation every command gives (compare, sweep, report, batch).

The rule, in words (README and docs/cli.md say the same):

    Pick the policy kind (always, paging, examine:RULE) that leaves the fewest IRPs failing,
    still failed or regressed (ties: the one that rescues most), and give it the smallest
    reserve with which no IRP waits parked for a reserved request. With a park-wait budget,
    the smallest reserve whose p99 park wait fits the budget instead.

No parking is the default because it is what a reserve is for: with as many reserved requests
as the trace's low-memory peak ever needed at once, every IRP the framework could not allocate
for is served at once. That smallest size is the peak demand: up to the moment a reserve of N
runs out, a replay with N reserved requests is the replay with an unlimited one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RULE = ("the policy kind that leaves the fewest IRPs failing (still failed or regressed), with "
        "the smallest reserve at which no IRP waits parked for a reserved request; with a "
        "park-wait budget, the smallest reserve whose p99 park wait fits the budget")


def reserve_kind(policy: str) -> str | None:
    """`always:8` -> `always`, `examine:8:SQL` -> `examine:SQL`; `none` has no reserve."""
    parts = policy.split(":", 2)
    if parts[0] == "examine" and len(parts) == 3:
        return f"examine:{parts[2]}"
    return parts[0] if parts[0] in ("always", "paging") and len(parts) == 2 else None


def policy_text(kind: str, reserved: int) -> str:
    """The policy of `kind` with `reserved` reserved requests (as --policy takes it)."""
    if kind.startswith("examine:"):
        return f"examine:{reserved}:{kind.split(':', 1)[1]}"
    return f"{kind}:{reserved}"


def fits(row: dict, budget_ns: int | None = None) -> bool:
    """Does a compare or sweep row meet the rule's size test: nothing parked, or with a budget
    a p99 park wait within it?"""
    if budget_ns is None:
        return row["parked"] == 0
    return row["parked"] == 0 or row["park_wait_ns"]["p99"] <= budget_ns


@dataclass
class Recommendation:
    kind: str | None                     # None: no policy with a reserve was compared
    reserved: int | None                 # None: no size tried meets the rule
    budget_ns: int | None = None
    # The kind's compared or swept sizes: reserved, parked, p99 park wait (the trade-off).
    trade_off: list[dict] = field(default_factory=list)

    @property
    def policy(self) -> str | None:
        """The --policy to use; None also when no reserve is needed (reserved 0: no IRP of the
        trace waited for a request, which is what batch's `needed_reserved` 0 says too)."""
        if self.kind is None or not self.reserved:
            return None
        return policy_text(self.kind, self.reserved)

    def as_dict(self) -> dict:
        return {"policy": self.policy, "kind": self.kind, "reserved": self.reserved,
                "budget_ns": self.budget_ns, "rule": RULE, "trade_off": self.trade_off}


def best_kind(rows: list[dict]) -> str | None:
    """The kind whose best row leaves the fewest IRPs failing (ties: rescues most, parks
    least)."""
    rows = [r for r in rows if reserve_kind(r["policy"])]
    if not rows:
        return None
    best = min(rows, key=lambda r: (r["still_failed"] + r["regressed"], -r["rescued"],
                                    r["parked"]))
    return reserve_kind(best["policy"])


def _trade_off(rows: list[dict]) -> list[dict]:
    return [{"reserved": r["reserved"], "parked": r["parked"],
             "park_wait_p99_ns": r["park_wait_ns"]["p99"] if r["parked"] else None}
            for r in sorted(rows, key=lambda r: r["reserved"])]


def from_sweep(kind: str, rows: list[dict], answer: int | None,
               budget_ns: int | None = None) -> Recommendation:
    """The rule's size from a sweep of one kind (rows: sizing.sweep_rows; answer: the sweep's
    smallest size that fits, found by bisection with `fits`)."""
    return Recommendation(kind, answer, budget_ns, _trade_off(rows))


def from_comparison(rows: list[dict], peak: dict[str, int] | None = None) -> Recommendation:
    """The rule over compare rows (no budget: compare has none). The size is the high water of
    a compared size of the best kind at which nothing parked (= the peak demand), else
    `peak[kind]` when the caller measured it (comparison.recommend does)."""
    kind = best_kind(rows)
    if kind is None:
        return Recommendation(None, None)
    mine = [{**r, "reserved": int(r["policy"].split(":")[1])} for r in rows
            if reserve_kind(r["policy"]) == kind]
    free = [r for r in mine if fits(r)]
    reserved = (min(r["reserve_high_water"] for r in free) if free
                else (peak or {}).get(kind))
    trade = _trade_off(mine)
    if reserved and all(t["reserved"] != reserved for t in trade):
        # the peak demand: nothing parks there (the module's docstring says why)
        trade = sorted([*trade, {"reserved": reserved, "parked": 0, "park_wait_p99_ns": None}],
                       key=lambda t: t["reserved"])
    return Recommendation(kind, reserved, None, trade)
