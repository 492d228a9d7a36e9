"""The report's charts, drawn by Bokeh: zoom, pan and hover in the page, its JavaScript inlined so
the page opens offline.

Why Bokeh: the page must open offline and travel in a support case, so the library's JavaScript
goes into the page; Bokeh's core bundle is 1.3 MB (plotly.js, the other candidate, is 4.8 MB),
it does box and wheel zoom, pan, hover, linked axes and click callbacks, and it writes text
(titles, labels, tooltips) as text, never as markup. Bokeh is imported only here and only when a
page is drawn: the CLI starts without it.

Long timelines are reduced to one step per pixel column keeping the column's maximum, so a spike
is never lost; a step series is drawn as a line through doubled points so hover hits it.
"""

from __future__ import annotations

import polars as pl

WIDTH = 1060
COLUMNS = 1500           # points per reduced series (a little over the chart's pixel width)
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf",
          "#e377c2", "#7f7f7f", "#bcbd22"]
TRACED_COLOR = "#111111"  # what actually happened: black, drawn on top
VERDICT_COLORS = {"rescued": "#2ca02c", "still_failed": "#d62728", "regressed": "#ff7f0e",
                  "same": "#9e9e9e"}
INCIDENT_FILL = "#ffb347"


def reduce_steps(ts: pl.Series, ys: pl.Series, t0: int, t1: int,
                 columns: int = COLUMNS) -> tuple[list[int], list[float]]:
    """A step series inside [t0, t1] (with the level carried in at t0) as the corners of its
    line, at most about 4 * columns of them: per column its maximum (spikes survive) and the
    level it carries on."""
    df = pl.DataFrame({"t": ts.cast(pl.Int64), "y": ys.cast(pl.Float64)}).drop_nulls()
    carried = df.filter(pl.col("t") < t0).tail(1).with_columns(pl.lit(t0, pl.Int64).alias("t"))
    df = pl.concat([carried, df.filter(pl.col("t").is_between(t0, t1))])
    if not df.height:
        return [], []
    if df.height > 2 * columns:
        span = max(1, t1 - t0)
        g = (df.with_columns(((pl.col("t") - t0) * columns // span).alias("b"))
             .group_by("b", maintain_order=True)
             .agg(pl.col("t").first(), pl.col("y").max(), pl.col("y").last().alias("last")))
        pts = [(t, v) for _, t, y, last in g.iter_rows() for v in (y, last)]
    else:
        pts = list(df.iter_rows())
    return _corners(pts, t1)


def _corners(pts, t1: int) -> tuple[list[int], list[float]]:
    """(t, y) points of a step series -> the corners of its line, on to t1."""
    xs, ys_out, prev = [], [], None
    for t, y in pts:
        if prev is not None:
            xs.append(t)
            ys_out.append(prev)
        xs.append(t)
        ys_out.append(y)
        prev = y
    xs.append(t1)
    ys_out.append(prev)
    return xs, ys_out


class StepReducer:
    """reduce_steps of a step series handed on in pieces in time order (a long trace's series is
    never whole in memory): the points inside [t0, t1] kept as they are while there are at most
    2 * columns of them, and per column its first time, maximum and last value; result() is
    what reduce_steps gives for the whole series."""

    def __init__(self, t0: int, t1: int, columns: int = COLUMNS):
        import numpy as np

        self.t0, self.t1, self.columns = t0, t1, columns
        self.span = max(1, t1 - t0)
        self.carried = None               # the last value before t0
        self.n = 0                        # points inside [t0, t1] (the carried one included)
        self.raw: list[tuple[int, float]] | None = []
        self.first = np.full(columns + 1, -1, dtype=np.int64)
        self.high = np.full(columns + 1, -np.inf)
        self.last = np.zeros(columns + 1)
        self.seen = np.zeros(columns + 1, dtype=bool)

    def add(self, ts, ys) -> None:
        """The next points: ts (int, non-decreasing, after every earlier one), ys."""
        import numpy as np

        ts = np.asarray(ts, dtype=np.int64)
        ys = np.asarray(ys, dtype=np.float64)
        before = ts < self.t0
        if before.any():
            self.carried = float(ys[before][-1])
        inside = (ts >= self.t0) & (ts <= self.t1)
        ts, ys = ts[inside], ys[inside]
        if not len(ts):
            return
        if self.carried is not None and self.n == 0:
            self._bucket(np.array([self.t0]), np.array([self.carried]))
            self.n = 1
            if self.raw is not None:
                self.raw.append((self.t0, self.carried))
        self.n += len(ts)
        if self.raw is not None:
            if self.n > 2 * self.columns:
                self.raw = None
            else:
                self.raw += zip(ts.tolist(), ys.tolist())
        self._bucket(ts, ys)

    def _bucket(self, ts, ys) -> None:
        import numpy as np

        b = (ts - self.t0) * self.columns // self.span
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        ends = np.r_[starts[1:], len(b)] - 1
        keys = b[starts]
        new = ~self.seen[keys]
        self.first[keys[new]] = ts[starts[new]]
        self.seen[keys] = True
        self.high[keys] = np.maximum(self.high[keys], np.maximum.reduceat(ys, starts))
        self.last[keys] = ys[ends]

    def result(self) -> tuple[list[int], list[float]]:
        if self.n == 0:
            if self.carried is None:
                return [], []
            return _corners([(self.t0, self.carried)], self.t1)
        if self.raw is not None:
            return _corners(self.raw, self.t1)
        keys = self.seen.nonzero()[0]
        pts = [(int(t), v) for t, y, last in zip(self.first[keys].tolist(),
                                                 self.high[keys].tolist(),
                                                 self.last[keys].tolist()) for v in (y, last)]
        return _corners(pts, self.t1)


def figure(title: str, x_label: str, y_label: str, x_range=None, height: int = 210,
           y_range_start: float | None = 0, counts: bool = True, x_counts: bool = False,
           **kw):
    """A chart with both axes labelled (units in the label), x pan and wheel zoom active, box
    zoom and reset in its toolbar."""
    from bokeh.models import BasicTicker
    from bokeh.plotting import figure as bokeh_figure

    f = bokeh_figure(title=title, width=WIDTH, height=height, x_axis_label=x_label,
               y_axis_label=y_label, tools="xpan,xwheel_zoom,box_zoom,reset,save",
               active_drag="xpan", active_scroll="xwheel_zoom", toolbar_location="right",
               **({"x_range": x_range} if x_range is not None else {}), **kw)
    f.toolbar.logo = None
    if y_range_start is not None:
        f.y_range.start = y_range_start
    if counts:   # a count axis labelled 0.5 or 2.25 reads as a mistake: whole ticks only
        f.yaxis.ticker = BasicTicker(desired_num_ticks=5, min_interval=1)
    if x_counts:   # reserve sizes
        f.xaxis.ticker = BasicTicker(desired_num_ticks=8, min_interval=1)
    f.title.text_font_size = "13px"
    f.xaxis.axis_label_text_font_style = f.yaxis.axis_label_text_font_style = "normal"
    f.min_border_left = 70
    return f


def _legend(f) -> None:
    """Clicking a legend entry hides its series; the legend sits outside the plot area."""
    if f.legend:
        f.legend.click_policy = "hide"
        f.legend.location = "top_left"
        f.legend.background_fill_alpha = 0.8
        f.legend.label_text_font_size = "11px"
        f.legend.spacing = 0
        f.legend.padding = 4


def step_lines(f, series: list[tuple[str, str, tuple[list, list], dict]], x_scale: float,
               origin: int, value_label: str) -> int:
    """Draws [(label, color, (xs_ns, ys), line style)] whose values are not all zero, with a
    hover naming the series, the time and the value. Returns how many were drawn."""
    import numpy as np
    from bokeh.models import ColumnDataSource, HoverTool

    drawn = []
    for label, color, (xs, ys), style in series:
        if not xs or not any(ys):
            continue   # a flat zero line says nothing and gets no legend entry
        # numpy arrays travel in the page as base64 binary, a third of JSON number lists
        src = ColumnDataSource({"x": (np.asarray(xs, dtype=np.int64) - origin) / x_scale,
                                "y": np.asarray(ys, dtype=np.float32)})
        drawn.append(f.line("x", "y", source=src, color=color, legend_label=label,
                            line_width=style.get("width", 1.6), alpha=style.get("alpha", 0.9),
                            line_dash=style.get("dash", "solid"), name=label))
    if drawn:
        f.add_tools(HoverTool(renderers=drawn, mode="vline", tooltips=[
            ("", "$name"), ("time", "@x{0,0.000000} s"), (value_label, "@y{0,0.[00]}")]))
    _legend(f)
    return len(drawn)


def shade(f, windows: list[tuple[float, float]]) -> None:
    """Incident windows (in the chart's x units) as shaded bands: one glyph for all of them (a
    trace of a thousand incidents would otherwise add a thousand models to every chart)."""
    from bokeh.models import ColumnDataSource

    if windows:
        src = ColumnDataSource({"x0": [lo for lo, _ in windows], "x1": [hi for _, hi in windows]})
        f.vstrip(x0="x0", x1="x1", source=src, fill_color=INCIDENT_FILL, fill_alpha=0.18,
                 line_alpha=0, level="underlay", name="incidents")


def irp_strip(points: dict[str, list], policies: list[str], x_range, windows) -> object:
    """One marker per (IRP, policy) whose outcome the policy changes, or that failed for real:
    x its arrival, y the policy, colour the verdict; a click tells the IRP's story (the page's
    fpStory function)."""
    from bokeh.models import (
        CDSView, ColumnDataSource, CustomJS, FactorRange, GroupFilter, HoverTool, TapTool,
    )

    f = figure("IRPs whose outcome a policy changes, and IRPs that failed (click one for its "
                "story)", "arrival, seconds since the trace start", "policy", x_range=x_range,
                height=max(150, 40 * len(policies) + 90),
                y_range=FactorRange(*reversed(policies)), y_range_start=None, counts=False)
    shade(f, windows)
    src = ColumnDataSource(points)
    for verdict, color in VERDICT_COLORS.items():
        if verdict not in points["verdict"]:
            continue
        f.scatter("x", "policy", source=src, view=CDSView(filter=GroupFilter(
            column_name="verdict", group=verdict)), size=9, color=color, alpha=0.75,
            legend_label=verdict.replace("_", " "), marker="diamond" if verdict == "regressed"
            else "circle", name=f"irps-{verdict}")
    f.add_tools(HoverTool(tooltips=[("IRP", "@irp"), ("arrived", "@x{0,0.000000} s"),
                                    ("policy", "@policy"), ("outcome", "@outcome"),
                                    ("verdict", "@verdict"), ("park wait", "@wait")]))
    tap = TapTool(callback=CustomJS(args={"src": src}, code="""
        const i = src.selected.indices;
        if (i.length) { window.fpStory(src.data.key[i[0]]); }"""))
    f.add_tools(tap)
    _legend(f)
    f.legend.orientation = "horizontal"
    f.legend.location = "top_right"
    return f


def sweep_figures(rows: list[dict], kind: str, budget_ms: float | None) -> list:
    """IRP counts against the reserve size, and the park wait: p99 drawn over max (thicker,
    with markers) so it stays visible where the two agree."""
    from bokeh.models import ColumnDataSource, HoverTool, Span

    if not rows:
        return []
    ns = [r["reserved"] for r in rows]
    out = []
    counts = figure(f"IRPs against the reserve size ({kind}:N)", "reserved requests N",
                     "IRPs", height=230, x_counts=True)
    drawn = []
    for (key, label), color in zip((("parked", "parked"), ("still_failed", "still failed"),
                                    ("rescued", "rescued")), COLORS):
        ys = [r[key] for r in rows]
        if not any(ys):
            continue
        src = ColumnDataSource({"x": ns, "y": ys, "series": [label] * len(ns)})
        drawn.append(counts.line("x", "y", source=src, color=color, legend_label=label,
                                 line_width=1.8, name=label))
        counts.scatter("x", "y", source=src, color=color, size=5, legend_label=label)
    if drawn:
        counts.add_tools(HoverTool(renderers=drawn, mode="vline", tooltips=[
            ("", "@series"), ("N", "@x"), ("IRPs", "@y")]))
        _legend(counts)
        counts.legend.location = "top_right"
        out.append(counts)
    waits = figure("Park wait against the reserve size", "reserved requests N",
                    "park wait (ms)", height=230, counts=False, x_counts=True)
    maxes = [r["park_wait_ns"]["max"] / 1e6 for r in rows]
    p99s = [r["park_wait_ns"]["p99"] / 1e6 for r in rows]
    drawn = []
    if any(maxes):
        src = ColumnDataSource({"x": ns, "y": maxes, "series": ["max"] * len(ns)})
        drawn.append(waits.line("x", "y", source=src, color="#ff7f0e", line_width=1.5,
                                line_dash="dashed", legend_label="max park wait",
                                name="max park wait"))
    if any(p99s):
        src = ColumnDataSource({"x": ns, "y": p99s, "series": ["p99"] * len(ns)})
        drawn.append(waits.line("x", "y", source=src, color="#1f77b4", line_width=3,
                                alpha=0.8, legend_label="p99 park wait", name="p99 park wait"))
        waits.scatter("x", "y", source=src, color="#1f77b4", size=6,
                      legend_label="p99 park wait")
    if drawn:
        if budget_ms:
            waits.add_layout(Span(location=budget_ms, dimension="width", line_color="#666",
                                  line_dash="dotdash", line_width=1.2))
            waits.line([ns[0]], [budget_ms], color="#666", line_dash="dotdash",
                       legend_label=f"budget {budget_ms:g} ms", name=f"budget {budget_ms:g} ms")
        waits.add_tools(HoverTool(renderers=drawn, mode="vline", tooltips=[
            ("", "@series"), ("N", "@x"), ("park wait", "@y{0,0.000} ms")]))
        _legend(waits)
        waits.legend.location = "top_right"
        out.append(waits)
    return out


def coverage_figure(points: list[tuple[int, int]], kind: str):
    """batch --report: how many traces a reserve of N serves without parking."""
    from bokeh.models import ColumnDataSource, HoverTool

    f = figure(f"Traces a reserve of N ({kind}:N) is enough for", "reserved requests N",
                "traces", height=240, x_counts=True)
    xs, ys = [n for n, _ in points], [c for _, c in points]
    src = ColumnDataSource({"x": xs, "y": ys})
    line = f.step("x", "y", source=src, mode="after", line_width=2,
                  legend_label="traces served without parking")
    f.scatter("x", "y", source=src, size=6)
    f.add_tools(HoverTool(renderers=[line], mode="vline",
                          tooltips=[("N", "@x"), ("traces", "@y")]))
    _legend(f)
    f.legend.location = "bottom_right"
    return f


def embed(figures: list) -> tuple[str, str, list[str]]:
    """(the library's JavaScript as an inline script, the figures' script, one div each).

    Only Bokeh's core bundle goes in: the page uses no widget, table or WebGL module."""
    from bokeh.embed import components
    from bokeh.resources import Resources

    if not figures:
        return "", "", []
    library = Resources(mode="inline", components=["bokeh"]).render_js()
    script, divs = components(figures)
    return library, script, list(divs)
