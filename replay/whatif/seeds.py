"""What a trace cannot tell: the verifier's seed. KMDF seeds ForwardProgressFailRandom from the
tick count when the device starts, and no trace holds it (issue 9). Under `verifier-random`
without a seed the what-if runs once per seed of VERIFIER_SEEDS and reports every figure as a
range over them: the median where one number is wanted, with min, max and each seed's value.
"""

from __future__ import annotations

# Five seeds: an odd count, so the median is one seed's figure; five runs keep a sweep affordable
# on a large trace. Any fixed values would do (a tick count is arbitrary); these are documented
# (docs/cli.md) so that `--seed N` reproduces one of them.
VERIFIER_SEEDS = (1, 2, 3, 4, 5)


def figure_range(values: list[int | None]) -> dict:
    """min / median / max of one figure over the seeds (values in seed order). None (e.g. no
    reserve size up to --max does it) counts as larger than any number."""
    ordered = sorted(values, key=lambda v: (v is None, v or 0))
    return {"min": ordered[0], "median": ordered[(len(ordered) - 1) // 2], "max": ordered[-1],
            "values": list(values)}


def _is_figure(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _median_and_range(values: list):
    first = values[0]
    if isinstance(first, dict):
        parts = {k: _median_and_range([v[k] for v in values]) for k in first}
        return ({k: m for k, (m, _) in parts.items()},
                {k: r for k, (_, r) in parts.items() if r is not None})
    if all(_is_figure(v) for v in values):
        r = figure_range(values)
        return r["median"], r
    return first, None


def combine_rows(rows: list[dict]) -> dict:
    """The same row (a compare or sweep row) from each seed's run -> one row of medians with a
    `range` entry holding each figure's figure_range (nested like the row: park_wait_ns.p99)."""
    median, ranges = _median_and_range(rows)
    return {**median, "range": ranges}
