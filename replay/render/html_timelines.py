"""The report's timelines (every policy overlaid on one time axis, incidents shaded) and the IRP
stories a click in the page tells (the `--explain` text, for the IRPs that matter, bounded)."""

from __future__ import annotations

import polars as pl

from fpreplay.replay import whatif
from fpreplay.replay.render import html_charts as charts
from fpreplay.schema import FAILED_ACTUALS, STARVED_ACTUALS

# At most this many IRPs get a story in the page (each is a few hundred bytes); the rest are one
# `fpreplay compare --explain` away, as the page says.
STORY_LIMIT = 300
X_LABEL = "seconds since the trace start (as --range counts)"


def story_key(irp: int, arrive_ns: int) -> str:
    """How the page names one IRP instance (an address is reused): ADDRESS@ARRIVAL_NS."""
    return f"0x{int(irp):x}@{int(arrive_ns)}"


def pick_stories(cmp: whatif.Comparison, listed: list[tuple[int, int]],
                 limit: int = STORY_LIMIT, matter_count: int | None = None
                 ) -> tuple[dict[str, str], int, int]:
    """The `--explain` story of the IRPs that matter: those whose outcome some policy changes
    first, then those that failed or used the reserve for real and those the page's tables list.
    Returns ({key: story text}, IRPs that matter, IRPs told). matter_count: the changed or
    starved IRPs counted over the whole trace when cmp.per_irp holds only some of them (the
    listed ones, and the first `limit` changed and starved ones besides: report_inputs)."""
    from fpreplay.replay.render.terminal import story_lines

    per = cmp.per_irp.with_row_index("_row")
    changed = pl.any_horizontal([pl.col(f"{p}:verdict") != "same" for p in cmp.policies]) \
        if cmp.policies else pl.lit(False)
    listed_df = pl.DataFrame({"irp": [i for i, _ in listed], "arrive_ns": [a for _, a in listed]},
                             schema={"irp": per.schema["irp"], "arrive_ns": pl.Int64})
    per = per.with_columns(changed.fill_null(False).alias("_changed"),
                           pl.col("actual").is_in(STARVED_ACTUALS).alias("_starved"))
    in_tables = per.join(listed_df.unique(), on=["irp", "arrive_ns"], how="semi")["_row"]
    listed_rows = pl.col("_row").is_in(in_tables.implode())
    matter = (per.filter(pl.col("_changed") | pl.col("_starved") | listed_rows)
              .sort(["_changed", "arrive_ns"], descending=[True, False], maintain_order=True))
    # The listed ones are told whatever the bound: a row the reader can click must answer.
    told_rows = pl.concat([matter.filter(pl.col("_row").is_in(in_tables.implode())),
                           matter.filter(~pl.col("_row").is_in(in_tables.implode())).head(
                               max(0, limit - len(in_tables)))])
    stories = {}
    for s in whatif.stories_of_rows(cmp, told_rows["_row"].to_list()):
        stories[story_key(s["irp"], s["arrive_ns"])] = "\n".join(story_lines(s))
    count = matter.height if matter_count is None else matter_count + matter.filter(
        ~pl.col("_changed") & ~pl.col("_starved")).height
    return stories, count, len(stories)


def strip_points(cmp: whatif.Comparison, stories: dict[str, str], t0: int) -> dict[str, list]:
    """One point per told IRP and policy whose verdict is not `same` or that failed for real."""
    cols = {k: [] for k in ("x", "policy", "verdict", "outcome", "wait", "irp", "key")}
    told = pl.DataFrame([k.split("@") for k in stories],
                        schema={"_hex": pl.String, "_at": pl.String}, orient="row")
    told = told.select(pl.col("_hex").str.slice(2).str.to_integer(base=16, dtype=pl.UInt64)
                       .alias("irp"), pl.col("_at").cast(pl.Int64).alias("arrive_ns"))
    # Only the told IRPs are walked in Python (a few hundred), not every IRP of the trace.
    rows = cmp.per_irp.join(told, on=["irp", "arrive_ns"], how="semi")
    for r in rows.iter_rows(named=True):
        key = story_key(r["irp"], r["arrive_ns"])
        for p in cmp.policies:
            verdict = r[f"{p}:verdict"]
            if verdict == "same" and r["actual"] not in FAILED_ACTUALS:
                continue
            wait = r[f"{p}:park_wait_ns"]
            cols["x"].append((r["arrive_ns"] - t0) / 1e9)
            cols["policy"].append(p)
            cols["verdict"].append(verdict)
            cols["outcome"].append(r[f"{p}:outcome"])
            cols["wait"].append("-" if wait is None else f"{wait / 1e6:.3f} ms")
            cols["irp"].append(f"0x{r['irp']:x}")
            cols["key"].append(key)
    return cols


def timeline_figures(cmp: whatif.Comparison, inputs, windows: list[tuple[int, int]],
                     queue_ops, traced: str | None,
                     stories: dict[str, str]) -> tuple[list, list[str]]:
    """Charts sharing one time axis (zoom or pan one, all follow), each overlaying every policy;
    charts with nothing to show are left out and named in the notes returned. inputs: the
    report_inputs.ReportInputs (the axis, the series reduced to what is drawn)."""
    from bokeh.models import Label, Range1d, Span

    t0, t1, series = inputs.t0, inputs.t1, inputs.series

    x_range = Range1d(0, (t1 - t0) / 1e9, bounds=(0, (t1 - t0) / 1e9), name="time-axis")
    shaded = [((lo - t0) / 1e9, (hi - t0) / 1e9) for lo, hi in windows]

    def name(p):
        return f"{p} (the driver's own)" if p == traced else p

    def style(p):
        return {"width": 2.6, "alpha": 0.75} if p == traced else {}

    colors = {p: charts.COLORS[i % len(charts.COLORS)] for i, p in enumerate(cmp.policies)}
    wanted = [
        ("IRPs in the driver (outstanding), as traced", "IRPs",
         [("as traced", charts.TRACED_COLOR, series["outstanding",], {})]),
        ("IRPs parked waiting for a reserved request", "IRPs parked",
         [(name(p), colors[p], series["parked", p], style(p)) for p in cmp.policies]),
        ("Reserved requests in use", "reserved requests",
         [(f"{name(p)} (N = {cmp.pool_sizes.get(p, 0)})", colors[p], series["in_use", p],
           style(p)) for p in cmp.policies if cmp.pool_sizes.get(p, 0)]),
        # as traced drawn last, thin and dashed: it stays visible over the driver's own policy
        # where the replay reproduces the trace
        ("IRPs failed for want of memory (cumulative)", "IRPs failed",
         [(name(p), colors[p], series["failures", p], style(p)) for p in cmp.policies]
         + [("as traced", charts.TRACED_COLOR, series["failures",],
             {"dash": "dashed", "width": 1.4})]),
    ]
    figures, left_out = [], []
    for title, unit, series in wanted:
        f = charts.figure(title, X_LABEL, unit, x_range=x_range)
        if not charts.step_lines(f, series, 1e9, t0, unit):
            left_out.append(title)
            continue
        charts.shade(f, shaded)
        for t, kind, _ in queue_ops:   # where the driver acted on its queues
            if t0 <= t <= t1:
                f.add_layout(Span(location=(t - t0) / 1e9, dimension="height",
                                  line_color="#555", line_dash="dashed", line_width=1))
                f.add_layout(Label(x=(t - t0) / 1e9, y=4, y_units="screen", x_offset=3,
                                   text=kind.removeprefix("queue_").replace("_", "+"),
                                   text_font_size="10px", text_color="#555"))
        figures.append(f)
    points = strip_points(cmp, stories, t0)
    if points["x"]:
        figures.append(charts.irp_strip(points, cmp.policies, x_range, shaded))
    else:
        left_out.append("IRPs a policy changes (none)")
    return figures, left_out
