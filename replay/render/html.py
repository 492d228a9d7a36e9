"""`fpreplay report`: one self-contained HTML page, drawn from the same JSON documents as the
terminal tables, with charts as inline SVG.

Why inline SVG written here rather than a plotting library: the page must open offline and be
mailed around in a support case, so nothing may be fetched (no CDN, no script); step plots of a
few series are a hundred lines of SVG; and a plotting library would add a large runtime
dependency for four chart shapes. Long timelines are reduced to one point per pixel column
keeping the column's maximum, so a spike is never lost.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone

import polars as pl

from fpreplay import __version__
from fpreplay.replay import whatif
from fpreplay.replay.render import terminal as render
from fpreplay.schema import ACTUAL_OUTCOMES, nt_error_expr

WIDTH, HEIGHT = 1040, 150
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 10, 34
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:2px;
margin-top:32px}h3{margin-bottom:4px}
.verdict{font-size:16px;font-weight:600;background:#f4f6fa;border-left:4px solid #1f77b4;
padding:8px 12px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:2px 8px;border-bottom:1px solid
#e4e4e4;text-align:right;white-space:nowrap}th{background:#f4f4f4;white-space:normal;
vertical-align:bottom}td.l,th.l{text-align:left}td.l{white-space:normal}
.next{margin:6px 0 0 16px}.muted{color:#666}.warn{color:#a33}svg{display:block;margin:4px 0 12px}
svg text{font:11px system-ui,sans-serif;fill:#444}.legend span{margin-right:16px}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
nav a{margin-right:12px}
"""


def esc(x) -> str:
    return html.escape("-" if x is None else str(x))


def _table(head: list[str], rows: list[list], left: int = 1, cls: str = "") -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>'
                 for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{esc(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


# --- charts -----------------------------------------------------------------------------------

def _reduce(ts: pl.Series, ys: pl.Series, t0: int, t1: int, columns: int) -> list[tuple]:
    """The step series inside [t0, t1] (with the level carried in at t0), one point pair per
    pixel column: the column's maximum (spikes survive) and the level it carries on."""
    df = pl.DataFrame({"t": ts.cast(pl.Int64), "y": ys.cast(pl.Float64)}).drop_nulls()
    carried = df.filter(pl.col("t") < t0).tail(1).with_columns(pl.lit(t0, pl.Int64).alias("t"))
    df = pl.concat([carried, df.filter(pl.col("t").is_between(t0, t1))])
    if not df.height:
        return []
    if df.height <= 2 * columns:
        return list(df.iter_rows())
    span = max(1, t1 - t0)
    df = df.with_columns(((pl.col("t") - t0) * columns // span).alias("b"))
    g = df.group_by("b", maintain_order=True).agg(pl.col("t").first(), pl.col("y").max(),
                                                  pl.col("y").last().alias("last"))
    out = []
    for _, t, y, last in g.iter_rows():
        out.append((t, y))
        out.append((t, last))   # the level the step carries into the next column
    return out


def _tick_step(span: float) -> float:
    """About five round steps over span: 1, 2 or 5 times a power of ten."""
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _ticks(span: float) -> list[float]:
    """Round tick positions from 0 to span."""
    if span <= 0:
        return [0.0]
    step = _tick_step(span)
    return [round(k * step, 12) for k in range(int(span / step) + 1)]


def _y_ticks(top: float, counts: bool) -> list[float]:
    """Round y ticks from 0 reaching at least `top`; whole numbers when the series are counts
    (a count axis labelled 0.75 or 2.25 reads as a mistake)."""
    top = max(float(top), 1.0 if counts else 0.0)
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if counts:
        step = max(1.0, math.ceil(step))
    n = math.ceil(top / step - 1e-9)
    return [round(k * step, 12) for k in range(n + 1)]


def step_chart(series: list[tuple[str, list[tuple]]], t0: int, t1: int, title: str,
               hline: tuple[str, float] | None = None,
               x_label: str = "seconds since the trace start (as --range counts)",
               x_is_time: bool = True, step: bool = True, counts: bool = True,
               origin: int | None = None, marks: list[tuple[int, str]] = ()) -> str:
    """An SVG chart of step (or straight) series [(label, [(x, y), ...])] with a legend."""
    w, h = WIDTH, HEIGHT
    iw, ih = w - PAD_L - PAD_R, h - PAD_T - PAD_B
    ymax = max([y for _, pts in series for _, y in pts] + [hline[1] if hline else 0] + [0])
    y_ticks = _y_ticks(float(ymax), counts)
    ymax = y_ticks[-1]
    span = max(1, t1 - t0)

    def X(t):
        return PAD_L + (t - t0) * iw / span

    def Y(y):
        return PAD_T + ih - y * ih / ymax

    parts = [f'<svg width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
             f'<rect x="{PAD_L}" y="{PAD_T}" width="{iw}" height="{ih}" fill="#fbfbfb" '
             f'stroke="#ccc"/>']
    for yv in y_ticks:
        parts.append(f'<line x1="{PAD_L}" x2="{PAD_L + iw}" y1="{Y(yv):.1f}" y2="{Y(yv):.1f}" '
                     f'stroke="#eee"/><text x="{PAD_L - 4}" y="{Y(yv) + 4:.1f}" '
                     f'text-anchor="end">{yv:g}</text>')
    if x_is_time:   # seconds from `origin` (default: the chart's start)
        origin = t0 if origin is None else origin
        step_s = _tick_step((t1 - t0) / 1e9) if t1 > t0 else 1.0
        first = math.ceil((t0 - origin) / 1e9 / step_s - 1e-9)
        ticks = []
        for k in range(first, first + 1000):
            xv = round(k * step_s, 12)
            if origin + xv * 1e9 > t1:
                break
            ticks.append((origin + xv * 1e9, xv))
    else:           # absolute values (reserve sizes)
        ticks = [(xv, xv) for xv in _ticks(t1) if xv >= t0]
    for x, xv in ticks:
        parts.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{PAD_T + ih}" '
                     f'y2="{PAD_T + ih + 4}" stroke="#999"/><text x="{X(x):.1f}" '
                     f'y="{PAD_T + ih + 15}" text-anchor="middle">{xv:g}</text>')
    parts.append(f'<text x="{PAD_L + iw}" y="{h - 3}" text-anchor="end">{esc(x_label)}</text>')
    for t, label in marks:   # queue operations: a dashed line where the driver acted
        if t0 <= t <= t1:
            parts.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{PAD_T}" '
                         f'y2="{PAD_T + ih}" stroke="#555" stroke-dasharray="3,3"/>'
                         f'<text x="{X(t) + 3:.1f}" y="{PAD_T + 10}">{esc(label)}</text>')
    if hline:
        parts.append(f'<line x1="{PAD_L}" x2="{PAD_L + iw}" y1="{Y(hline[1]):.1f}" '
                     f'y2="{Y(hline[1]):.1f}" stroke="#888" stroke-dasharray="5,4"/>'
                     f'<text x="{PAD_L + iw - 4}" y="{Y(hline[1]) - 3:.1f}" text-anchor="end">'
                     f'{esc(hline[0])}</text>')
    for i, (label, pts) in enumerate(series):
        if not pts:
            continue
        color = COLORS[i % len(COLORS)]
        coords, prev = [], None
        for t, y in pts:
            if step and prev is not None:
                coords.append(f"{X(t):.1f},{Y(prev):.1f}")
            coords.append(f"{X(t):.1f},{Y(y):.1f}")
            prev = y
        if step and prev is not None:
            coords.append(f"{X(t1):.1f},{Y(prev):.1f}")
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{" ".join(coords)}"><title>{esc(label)}</title></polyline>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{esc(lbl)}'
                     f'</span>' for i, (lbl, _) in enumerate(series))
    return (f'<div class="chart"><h4>{esc(title)}</h4>{"".join(parts)}'
            f'<div class="legend">{legend}</div></div>')


def _failures_series(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Cumulative IRPs the simulation completed with an error status, by completion time."""
    f = (outcomes.filter(nt_error_expr(pl.col("status")))
         .select(pl.coalesce("complete_ns", "deliver_ns").alias("ts_ns")).drop_nulls()
         .sort("ts_ns").with_row_index("n", offset=1))
    return f


def policy_charts(cmp: whatif.Comparison, t0: int, t1: int) -> str:
    cols = WIDTH - PAD_L - PAD_R
    actual = whatif.actual_timeline(cmp.per_irp)
    # Two charts, not one: hundreds of cumulative failures would flatten a handful of
    # outstanding IRPs into the axis.
    out = ['<h3>What actually happened</h3>',
           step_chart([("outstanding IRPs", _reduce(actual["ts_ns"], actual["outstanding"],
                                                    t0, t1, cols))],
                      t0, t1, "Outstanding IRPs, as traced"),
           step_chart([("failed for want of memory (cumulative)",
                        _reduce(actual["ts_ns"], actual["failures"], t0, t1, cols))],
                      t0, t1, "IRPs failed for want of memory, as traced")
           if actual.height and (actual["failures"].max() or 0) > 0
           else "<p>No IRP failed for want of memory.</p>"]
    for p in cmp.policies:
        tl = cmp.total(p)
        n = cmp.pool_sizes.get(p, 0)
        fails = _failures_series(cmp.outcomes[p])
        out.append(f'<h3 id="policy-{esc(p)}">Policy {esc(p)}</h3>')
        out.append(step_chart([("outstanding IRPs", _reduce(tl["ts_ns"], tl["outstanding"],
                                                           t0, t1, cols))],
                              t0, t1, f"{p}: outstanding IRPs"))
        if n:   # `none` has no reserve to draw
            out.append(step_chart([("reserved requests in use",
                                    _reduce(tl["ts_ns"], tl["reserved_in_use"], t0, t1, cols))],
                                  t0, t1, f"{p}: reserved requests in use against N = {n}",
                                  hline=(f"N = {n}", n)))
        out.append(step_chart([("parked IRPs", _reduce(tl["ts_ns"], tl["parked"], t0, t1,
                                                      cols)),
                               ("IRPs completed with an error (cumulative)",
                                _reduce(fails["ts_ns"], fails["n"], t0, t1, cols))],
                              t0, t1, f"{p}: parked depth and failures"))
    return "".join(out)


def sweep_chart(sweep_doc: dict) -> str:
    rows = sweep_doc["rows"]
    if not rows:
        return ""
    x0, x1 = rows[0]["reserved"], max(rows[-1]["reserved"], rows[0]["reserved"] + 1)
    counts = step_chart(
        [("parked", [(r["reserved"], r["parked"]) for r in rows]),
         ("still failed", [(r["reserved"], r["still_failed"]) for r in rows]),
         ("rescued", [(r["reserved"], r["rescued"]) for r in rows])],
        x0, x1, f"IRPs against reserve size ({sweep_doc['kind']})",
        x_label="reserved requests N", x_is_time=False, step=False)
    waits = step_chart(
        [("p99 park wait (ms)", [(r["reserved"], r["park_wait_ns"]["p99"] / 1e6)
                                 for r in rows]),
         ("max park wait (ms)", [(r["reserved"], r["park_wait_ns"]["max"] / 1e6)
                                 for r in rows])],
        x0, x1, "Park wait against reserve size (ms)",
        hline=(("budget", sweep_doc["budget_ns"] / 1e6) if sweep_doc["budget_ns"] else None),
        x_label="reserved requests N", x_is_time=False, step=False, counts=False)
    return counts + waits


# --- sections ---------------------------------------------------------------------------------

def _actual_rows(rows: list[dict], names=str) -> list[list]:
    return [[names(r["name"]), r["irps"], *[r["actual"][a] for a in ACTUAL_OUTCOMES]]
            for r in rows]


def _compare_rows(doc: dict) -> list[list]:
    """The compare rows; with several seeds each figure 'median (min–max)'."""
    out = []
    for r in [doc["observed"], *doc["policies"]]:
        ranges = r.get("range") or {}

        def fig(key, text=None, fmt=str, r=r, ranges=ranges):
            spread = render.spread(ranges.get(key), fmt)
            text = str(r[key]) if text is None else text
            return f"{text} ({spread})" if spread else text

        waits = ranges.get("park_wait_ns") or {}
        out.append([r["policy"], fig("rescued"), fig("still_failed"), fig("regressed"),
                    fig("parked"),
                    *[f"{t} ({render.spread(waits.get(p), render.fmt_duration)})"
                      if render.spread(waits.get(p), render.fmt_duration) else t
                      for p, t in zip(("p50", "p99", "max"), render.fmt_waits(r))],
                    fig("cancelled"), fig("invalid_state"), fig("reserve_high_water")])
    return out


COMPARE_HEAD = ["policy", "rescued", "still failed", "regressed", "parked", "park wait p50",
                "p99", "max", "cancelled", "invalid state", "reserve high water"]


def _fmt_bytes(n) -> str:
    if n is None:
        return "-"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _incident_section(i: dict, policies: list[str], cmp: whatif.Comparison,
                      queue_ops: list[tuple[int, str, str | None]] = ()) -> str:
    parts = [f'<section id="incident-{i["incident"]}"><h3>Incident {i["incident"]}: '
             f'{esc(render.fmt_time(i["start_ns"]))} UTC, '
             f'{esc(render.fmt_duration(i["duration_ns"]))}</h3>',
             _table(["IRPs arrived", "alloc_failed", "refused", "reserved",
                     "insufficient-resources completions", "memory-pressure signals",
                     "lowest available memory", "paging share"],
                    [[i["irps"], i["alloc_failed"], i["refused"], i["reserved"],
                      i["insufficient_resources"], i["memory_pressure"],
                      _fmt_bytes(i["min_available_bytes"]), render.fmt_share(i["paging_share"])]],
                    left=0),
             f'<p>Devices: {esc(", ".join(i["devices"]) or "-")}. Queues: '
             f'{esc(", ".join(i["queues"]) or "(default)")}.</p>']
    ops_text = render.queue_ops_line(i, queue_ops)
    if ops_text:
        parts.append(f"<p>{esc(ops_text)}</p>")
    head = ["from (UTC)", "arrived", "allocation failed", "outstanding"]
    head += [f"{p}: reserved in use / parked" for p in policies]   # headers wrap (CSS)
    parts.append("<h4>Timeline</h4><p class=\"muted\">Ten equal steps. allocation failed: "
                 "IRPs whose request allocation failed, served from the reserve or not; "
                 "outstanding: the most IRPs in the driver at once, as traced.</p>"
                 + _table(head, [
        [render.fmt_time(b["start_ns"])[11:], b["arrived"], b["failed"], b["outstanding"],
         *[f"{b['policies'][p]['reserved_in_use']} / {b['policies'][p]['parked']}"
           for p in policies]] for b in i["timeline"]]))
    if cmp is not None and i["end_ns"] > i["start_ns"]:
        # A chart of the incident window, padded a little on each side.
        pad = max(1, (i["end_ns"] - i["start_ns"]) // 10)
        lo, hi = i["start_ns"] - pad, i["end_ns"] + pad
        cols = WIDTH - PAD_L - PAD_R
        series = []
        for p in policies:
            tl = cmp.total(p)
            series.append((f"{p}: parked", _reduce(tl["ts_ns"], tl["parked"], lo, hi, cols)))
            series.append((f"{p}: reserved in use",
                           _reduce(tl["ts_ns"], tl["reserved_in_use"], lo, hi, cols)))
        marks = [(t, k.removeprefix("queue_").replace("_", "+")) for t, k, _ in queue_ops]
        parts.append(step_chart(series, lo, hi, f"Incident {i['incident']}: parked and reserved "
                                "in use", x_label="seconds since the incident started",
                                origin=i["start_ns"], marks=marks))
    parts.append("<h4>What each policy would have done</h4>"
                 + _table(COMPARE_HEAD[:5] + ["park wait p50", "p99", "max", "cancelled",
                                              "invalid state", "reserve high water"],
                          _compare_rows({"observed": i["observed"],
                                         "policies": i["policies"]})))
    if i["irp_list"]:
        rows = [[render.fmt_irp(r["irp"]), render.fmt_time(r["arrive_ns"])[11:],
                 r["device"], r["queue"] or "(default)",
                 render.major_name(r["major"]) if r["major"] is not None else "-",
                 "yes" if r["paging"] else "no", r["actual"],
                 *[f"{r['policies'][p]['outcome']} ({r['policies'][p]['verdict']})"
                   for p in policies]] for r in i["irp_list"]]
        more = i["deciding_irps"] - len(i["irp_list"])
        parts.append(f"<h4>IRPs that decided it ({i['deciding_irps']})</h4>"
                     + _table(["IRP", "arrived", "device", "queue", "major", "paging", "actual",
                               *policies], rows, left=len(policies) + 7)
                     + (f'<p class="muted">{more} more in <code>fpreplay compare -o</code>.</p>'
                        if more > 0 else ""))
    parts.append("</section>")
    return "".join(parts)


def _next_steps(analyze_doc: dict, compare_doc: dict, sweep_doc: dict, args: str) -> str:
    """Under the verdict: what the comparison and the sweep say to do, as the terminal does."""
    lines = [render.compare_summary(compare_doc, args, with_next=False),
             render.next_sweep(sweep_doc, args)]
    if not (analyze_doc["actual"]["alloc_failed"] + analyze_doc["actual"]["refused"]
            + analyze_doc["actual"]["reserved"]):
        lines = [render.next_analyze(analyze_doc, args)]
    return "".join(f'<p class="next">{_code_spans(t)}</p>' for t in lines if t)


def _code_spans(text: str) -> str:
    """`command` (as the terminal prints it) -> <code>command</code>, the rest escaped."""
    parts = text.split("`")
    return "".join(f"<code>{esc(p)}</code>" if k % 2 else esc(p) for k, p in enumerate(parts))


def _sweep_answers(doc: dict) -> str:
    def answer(n) -> str:
        return esc(n if n is not None else f"none up to {doc['max_reserved']}")

    text = (f"Smallest reserve at which nothing parks ({esc(doc['kind'])}): "
            f"<b>{answer(doc['min_reserved_no_park'])}</b>"
            f"{esc(render.over_seeds(doc, 'min_reserved_no_park'))}")
    if doc["budget_ns"] is not None:
        text += (f"; smallest whose p99 park wait fits {esc(render.fmt_duration(doc['budget_ns']))}"
                 f": <b>{answer(doc['min_reserved_within_budget'])}</b>"
                 f"{esc(render.over_seeds(doc, 'min_reserved_within_budget'))}")
    if doc.get("seeds"):
        text += (f". Memory {esc(doc['memory'])}, seeds "
                 f"{esc(', '.join(map(str, doc['seeds'])))}: each figure is the median over the "
                 "seeds, min–max in brackets (the verifier's seed is not in the trace)")
    return f"<p>{text}</p>"


# Forward-progress evidence in a user's words (the JSON keys are for scripts).
EVIDENCE_LABELS = {
    "reserved_request_used": "reserved requests used",
    "fp_policy_refused": "policy refusals",
    "request_alloc_failed": "request allocation failures",
    "request_resources_failed": "resource-callback failures",
    "memory_pressure": "memory-pressure signals",
    "reserved_irps": "IRPs served from the reserve",
    "refused_irps": "IRPs refused",
}


def render_report(analyze_doc: dict, compare_doc: dict, sweep_doc: dict, incidents_doc: dict,
                  cmp: whatif.Comparison, args: str = "TRACE",
                  queue_ops: list[tuple[int, str, str | None]] = (),
                  trace_start_ns: int | None = None) -> str:
    a = analyze_doc
    irps = cmp.per_irp
    t0 = int(irps["arrive_ns"].min()) if irps.height else 0
    if trace_start_ns is not None and trace_start_ns <= t0:
        # Charts count seconds from the trace start, as --range does: a time read off a chart
        # can be typed into --range as it is.
        t0 = int(trace_start_ns)
    t1 = int(irps.select(pl.max_horizontal(pl.col("arrive_ns").max(),
                                           pl.col("complete_ns").max())).item() or t0 + 1)
    t1 = max(t1, t0 + 1)
    generated = datetime.now(tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = ('<nav><a href="#summary">Summary</a><a href="#compare">Policies</a>'
           '<a href="#timelines">Timelines</a><a href="#sweep">Sweep</a>'
           '<a href="#incidents">Incidents</a></nav>')
    body = [
        f"<h1>fpreplay report</h1><p class=\"muted\">{esc(', '.join(a['inputs']))} · memory "
        f"model {esc(compare_doc['memory'])} · fpreplay {__version__} · {generated}</p>", nav,
        f'<p class="verdict">{esc(a["verdict"])}</p>',
        _next_steps(a, compare_doc, sweep_doc, args),
        '<h2 id="summary">Summary</h2>',
        _table(["events", "records", "events lost", "buffers lost", "IRPs"],
               [[a["events"], a["records"], a["events_lost"], a["buffers_lost"], a["irps"]]],
               left=0),
        "<h3>Actual outcomes</h3>",
        _table(list(ACTUAL_OUTCOMES), [[a["actual"][k] for k in ACTUAL_OUTCOMES]], left=0),
        "<h3>By device</h3>",
        _table(["device", "IRPs", *ACTUAL_OUTCOMES], _actual_rows(a["by_device"])),
        "<h3>By queue</h3>",
        _table(["queue", "IRPs", *ACTUAL_OUTCOMES], _actual_rows(a["by_queue"])),
        "<h3>By major function</h3>",
        _table(["major", "IRPs", *ACTUAL_OUTCOMES], _actual_rows(a["by_major"],
                                                                  render.major_name)),
        "<h3>Forward-progress evidence</h3>",
        _table([EVIDENCE_LABELS.get(k, k) for k in a["forward_progress"]],
               [list(a["forward_progress"].values())], left=0),
        f"<h3>IRPs that never completed ({a['never_completed']['count']})</h3>",
        _table(["IRP", "arrived (UTC)", "device", "queue", "major"],
               [[render.fmt_irp(r["irp"]), render.fmt_time(r["arrive_ns"]), r["device"],
                 r["queue"] or "(default)",
                 render.major_name(r["major"]) if r["major"] is not None else "-"]
                for r in a["never_completed"]["irps"]], left=5)
        if a["never_completed"]["count"] else "<p>Every IRP completed.</p>",
        '<h2 id="compare">Policies against what happened</h2>',
        _table(COMPARE_HEAD, _compare_rows(compare_doc)),
        '<p class="muted">rescued: failed for real, delivered in the simulation; still failed: '
        'failed for real and again; regressed: served for real, failed in the simulation. '
        'Every count is a filter of the per-IRP table that <code>fpreplay compare -o</code> '
        'writes.</p>',
        '<h2 id="timelines">Timelines</h2>', policy_charts(cmp, t0, t1),
        '<h2 id="sweep">Reserve size</h2>', sweep_chart(sweep_doc),
        _table(["reserved", "rescued", "still failed", "regressed", "parked", "park wait p50",
                "p99", "max", "reserve high water"],
               [[r["reserved"], r["rescued"], r["still_failed"], r["regressed"], r["parked"],
                 *render.fmt_waits(r), r["reserve_high_water"]]
                for r in sweep_doc["rows"]], left=0),
        _sweep_answers(sweep_doc),
        f'<h2 id="incidents">Low-memory incidents ({len(incidents_doc["incidents"])})</h2>',
    ]
    if incidents_doc["incidents"]:
        body += [_incident_section(i, incidents_doc["policies"], cmp, queue_ops)
                 for i in incidents_doc["incidents"]]
    else:
        body.append("<p>No low-memory incident.</p>")
    warnings = compare_doc["warnings"]
    if warnings:
        body.append("<h2>Warnings</h2><ul>" + "".join(f'<li class="warn">{esc(w)}</li>'
                                                      for w in warnings) + "</ul>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>fpreplay report: {esc(', '.join(a['inputs']))}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
