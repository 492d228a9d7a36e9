"""`fpreplay report`: one self-contained HTML page, drawn from the same JSON documents as the
terminal tables, with interactive charts (html_charts: Bokeh, its JavaScript inlined) and the
`--explain` story of the IRPs that matter a click away (html_timelines).

Nothing in the page is fetched: no URL is loaded, so it opens offline and can be mailed around
in a support case. Every text from a trace (device, queue, file and event names) reaches the page
escaped: in markup through `esc`, in the story data as JSON with `<`, `>` and `&` as \\u escapes,
in the charts as Bokeh's text properties.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

from fpreplay import __version__
from fpreplay.replay import whatif
from fpreplay.replay.render import terminal as render
from fpreplay.replay.render.html_timelines import story_key
from fpreplay.schema import ACTUAL_OUTCOMES

# A table longer than this scrolls inside its box (the header stays) instead of the page.
SCROLL_ROWS = 12

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{border-bottom:1px solid #ccc;padding-bottom:2px;
margin-top:32px}h3{margin-bottom:4px}
.verdict{font-size:16px;font-weight:600;background:#f4f6fa;border-left:4px solid #1f77b4;
padding:8px 12px}
.warnings{background:#fff6f4;border-left:4px solid #c0392b;padding:4px 12px 4px 28px;margin:8px 0}
.warnings li{color:#8a2a1e}
table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:2px 8px;border-bottom:1px solid
#e4e4e4;text-align:right;white-space:nowrap}th{background:#f4f4f4;vertical-align:bottom}
td.l,th.l{text-align:left}
.scroll{max-height:340px;overflow:auto;border:1px solid #e4e4e4;margin:8px 0 4px;max-width:100%}
.scroll table{margin:0}.scroll th{position:sticky;top:0;z-index:1}
tr[data-irp]{cursor:pointer}tr[data-irp]:hover td{background:#eef4fb}
tr.picked td{background:#dbe9f8}
.next{margin:6px 0 0 16px}.muted{color:#666}
nav{position:sticky;top:0;background:#fff;padding:4px 0;margin-top:12px;z-index:5;border-bottom:1px solid #eee}
nav a{margin-right:12px}
.chart{margin:6px 0 14px}
button.zoom{font:inherit;font-size:13px;margin:2px 0 8px;cursor:pointer}
#story{position:fixed;right:12px;bottom:12px;width:min(720px,calc(100vw - 40px));
max-height:45vh;overflow:auto;background:#fffef6;border:1px solid #c9b458;border-radius:4px;
box-shadow:0 2px 10px rgba(0,0,0,.2);padding:8px 12px;display:none;z-index:10}
#story pre{white-space:pre-wrap;margin:4px 0;font:12px/1.45 ui-monospace,Consolas,monospace}
#story button{float:right;font:inherit;cursor:pointer}
"""

# The page's own script: an IRP's story on a click (chart point or table row), and the
# incidents' buttons that zoom the shared time axis. Story text is set as text, never as HTML.
PAGE_JS = """
(function(){
  const box = document.getElementById('story');
  if (!box) { return; }
  const stories = JSON.parse(document.getElementById('fp-stories').textContent);
  const text = document.getElementById('story-text');
  window.fpStory = function(key){
    const known = Object.prototype.hasOwnProperty.call(stories, key);
    const irp = key.split('@')[0];
    text.textContent = known ? stories[key] : 'IRP ' + irp + ': its story is not in this page ('
      + 'see the note above the charts); run: fpreplay compare TRACE --policy ... --explain ' + irp;
    box.style.display = 'block';
    document.querySelectorAll('tr.picked').forEach(function(r){ r.classList.remove('picked'); });
    document.querySelectorAll('tr[data-irp]').forEach(function(r){
      if (r.getAttribute('data-irp') === key) { r.classList.add('picked'); }
    });
  };
  document.getElementById('story-close').addEventListener('click', function(){
    box.style.display = 'none';
  });
  document.addEventListener('click', function(e){
    const row = e.target.closest('tr[data-irp]');
    if (row) { window.fpStory(row.getAttribute('data-irp')); }
    const zoom = e.target.closest('button.zoom');
    if (zoom && window.Bokeh) {
      const lo = parseFloat(zoom.getAttribute('data-lo')), hi = parseFloat(zoom.getAttribute('data-hi'));
      for (const doc of Bokeh.documents) {
        const axis = doc.get_model_by_name('time-axis');
        if (axis) { axis.setv({start: lo, end: hi}); }
      }
      document.getElementById('timelines').scrollIntoView();
    }
  });
})();
"""


def esc(x) -> str:
    return html.escape("-" if x is None else str(x))


def _table(head: list[str], rows: list[list], left: int = 1, cls: str = "",
           keys: list[str] | None = None, raw: tuple[int, ...] = ()) -> str:
    """A table; `keys` names each row's IRP (a click tells its story); the `raw` columns hold
    markup the page made itself (a link), the rest is escaped. Longer than SCROLL_ROWS rows, it
    scrolls in its own box under a header that stays."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>'
                 for i, h in enumerate(head))
    body = "".join(
        (f'<tr data-irp="{esc(keys[n])}" title="click for its story">' if keys else "<tr>")
        + "".join(f'<td class="{"l" if i < left else ""}">{c if i in raw else esc(c)}</td>'
                  for i, c in enumerate(r)) + "</tr>" for n, r in enumerate(rows))
    table = f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="scroll">{table}</div>' if len(rows) > SCROLL_ROWS else table


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


# A trace of hundreds of incidents gets a row each in the overview and a section for the worst
# of them: the page stays a page (and its stories bounded) whatever the trace's length.
INCIDENT_DETAIL_LIMIT = 20


def detailed_incidents(incidents: list[dict], limit: int | None = None) -> list[dict]:
    """The incidents the page details: the `limit` with the most IRPs failed for want of memory
    (alloc_failed + refused; the earlier first on a tie), in time order."""
    worst = sorted(incidents, key=lambda i: (-(i["alloc_failed"] + i["refused"]), i["start_ns"]))
    return sorted(worst[:INCIDENT_DETAIL_LIMIT if limit is None else limit], key=lambda i: i["start_ns"])


def _incident_overview(incidents: list[dict], detailed: list[dict]) -> str:
    """One row per incident; those with a section below link to it."""
    shown = {i["incident"] for i in detailed}
    rows = [[f'<a href="#incident-{i["incident"]}">{i["incident"]}</a>' if i["incident"] in shown
             else str(i["incident"]), render.fmt_time(i["start_ns"]),
             render.fmt_duration(i["duration_ns"]), i["irps"], i["alloc_failed"], i["refused"],
             i["reserved"], ", ".join(i["devices"]) or "-"] for i in incidents]
    return (f'<p class="muted">Detailed below: the {len(detailed)} incidents with the most IRPs '
            f'failed for want of memory, of {len(incidents)} (numbers linked); every incident '
            'in full: <code>fpreplay incidents TRACE --json</code>.</p>'
            + _table(["#", "start (UTC)", "length", "IRPs arrived", "alloc_failed", "refused",
                      "reserved", "devices"], rows, left=0, raw=(0,)))


def _incident_section(i: dict, policies: list[str], t0: int,
                      queue_ops: list[tuple[int, str, str | None]] = ()) -> str:
    parts = [f'<section id="incident-{i["incident"]}"><h3>Incident {i["incident"]}: '
             f'{esc(render.fmt_time(i["start_ns"]))} UTC, '
             f'{esc(render.fmt_duration(i["duration_ns"]))}</h3>',
             f'<button class="zoom" data-lo="{(i["start_ns"] - t0) / 1e9:.9f}" '
             f'data-hi="{(max(i["end_ns"], i["start_ns"] + 1) - t0) / 1e9:.9f}">Zoom the '
             'timelines to this incident</button>',
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
    head += [f"{p}: in use / parked" for p in policies]
    parts.append("<h4>Timeline</h4><p class=\"muted\">Ten equal steps. allocation failed: "
                 "IRPs whose request allocation failed, served from the reserve or not; "
                 "outstanding: the most IRPs in the driver at once, as traced; in use / parked: "
                 "reserved requests in use and IRPs parked under each policy.</p>"
                 + _table(head, [
        [render.fmt_time(b["start_ns"])[11:], b["arrived"], b["failed"], b["outstanding"],
         *[f"{b['policies'][p]['reserved_in_use']} / {b['policies'][p]['parked']}"
           for p in policies]] for b in i["timeline"]]))
    parts.append("<h4>What each policy would have done</h4>"
                 + _table(COMPARE_HEAD, _compare_rows({"observed": i["observed"],
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
                     '<p class="muted">Changed outcomes first; click a row for its story.</p>'
                     + _table(["IRP", "arrived", "device", "queue", "major", "paging", "actual",
                               *policies], rows, left=len(policies) + 7,
                              keys=[story_key(r["irp"], r["arrive_ns"]) for r in i["irp_list"]])
                     + (f'<p class="muted">The first {len(rows)} of {i["deciding_irps"]}; all '
                        f'of them in <code>fpreplay compare -o</code>.</p>' if more > 0 else ""))
    parts.append("</section>")
    return "".join(parts)


def _next_steps(analyze_doc: dict, compare_doc: dict, sweep_doc: dict, args: str) -> str:
    """Under the verdict: what the comparison and the sweep say to do, as the terminal does. The
    sweep's next step only where it sized the recommended kind (a sweep of another --kind would
    point at a policy the recommendation just ranked below it)."""
    lines = [render.compare_summary(compare_doc, args, with_next=False)]
    if sweep_doc["kind"] == (compare_doc.get("recommendation") or {}).get("kind"):
        lines.append(render.next_sweep(sweep_doc, args))
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


def _summary(a: dict) -> list[str]:
    """What actually happened: the counts, by device, queue and major, the evidence."""
    return [
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
        _table(["evidence", "count"], [[EVIDENCE_LABELS.get(k, k), v]
                                       for k, v in a["forward_progress"].items()]),
        f"<h3>IRPs that never completed ({a['never_completed']['count']})</h3>",
        (_table(["IRP", "arrived (UTC)", "device", "queue", "major"],
                [[render.fmt_irp(r["irp"]), render.fmt_time(r["arrive_ns"]), r["device"],
                  r["queue"] or "(default)",
                  render.major_name(r["major"]) if r["major"] is not None else "-"]
                 for r in a["never_completed"]["irps"]], left=5,
                keys=[story_key(r["irp"], r["arrive_ns"]) for r in a["never_completed"]["irps"]])
         + (f'<p class="muted">The first {len(a["never_completed"]["irps"])} of '
            f'{a["never_completed"]["count"]}.</p>'
            if a["never_completed"]["count"] > len(a["never_completed"]["irps"]) else ""))
        if a["never_completed"]["count"] else "<p>Every IRP completed.</p>",
    ]


def _traced_line(traced: whatif.TracedPolicy | None, policies: list[str]) -> str:
    if traced is None:
        return ""
    if traced.policy is None:
        return (f'<p class="muted">The driver\'s own policy is not shown: {esc(traced.why)}.'
                '</p>')
    return (f'<p>The driver\'s own policy, <b>{esc(traced.policy)}</b> ({esc(traced.why)}), '
            'is among the policies: its replay should match what happened.</p>'
            if traced.policy in policies else "")


def _charts_section(cmp: whatif.Comparison, inputs, windows, queue_ops,
                    traced: str | None, stories: dict[str, str], matter: int,
                    sweep_doc: dict) -> tuple[list[str], list[str]]:
    """(the timelines' HTML, the sweep charts' HTML) and the inlined library with them."""
    from fpreplay.replay.render import html_charts, html_timelines

    timelines, left_out = html_timelines.timeline_figures(cmp, inputs, windows, queue_ops,
                                                          traced, stories)
    sweeps = html_charts.sweep_figures(
        sweep_doc["rows"], sweep_doc["kind"],
        sweep_doc["budget_ns"] / 1e6 if sweep_doc["budget_ns"] else None)
    library, script, divs = html_charts.embed(timelines + sweeps)
    notes = ['<p class="muted">One time axis for every chart: drag to pan, scroll to zoom, '
             'box-zoom and reset from the toolbar. Shaded: '
             'low-memory incidents' + ("; dashed vertical lines: queue operations the trace shows"
                                       if queue_ops else "") +
             '. Click a legend entry to hide its line; hover for values.</p>']
    if left_out:
        notes.append('<p class="muted">Left out, nothing to draw: ' + esc("; ".join(left_out))
                     + '.</p>')
    if matter > len(stories):
        notes.append(f'<p class="muted">Stories in this page: {len(stories)} of the {matter} '
                     'IRPs that matter (changed outcomes first). For another: '
                     '<code>fpreplay compare TRACE --policy P --explain ADDRESS</code>.</p>')
    first = "".join(notes) + "".join(f'<div class="chart">{d}</div>'
                                     for d in divs[:len(timelines)])
    rest = "".join(f'<div class="chart">{d}</div>' for d in divs[len(timelines):])
    return [first, rest], [library, script]


def render_report(analyze_doc: dict, compare_doc: dict, sweep_doc: dict, incidents_doc: dict,
                  cmp: whatif.Comparison, args: str = "TRACE",
                  queue_ops: list[tuple[int, str, str | None]] = (),
                  trace_start_ns: int | None = None,
                  traced: whatif.TracedPolicy | None = None, inputs=None) -> str:
    """The page. traced: the driver's own policy (whatif.traced_policy), named where it is one
    of cmp's policies and marked in the charts. inputs: what the charts draw
    (report_inputs.ReportInputs, gathered while streaming; cmp then holds only the IRPs the
    page shows); None: drawn from cmp, which kept every IRP."""
    from fpreplay.replay.render.html_timelines import pick_stories
    from fpreplay.replay.render.report_inputs import whole_inputs

    a = analyze_doc
    if inputs is None:
        inputs = whole_inputs(cmp, trace_start_ns)
    t0 = inputs.t0
    incidents = incidents_doc["incidents"]
    detailed = detailed_incidents(incidents)
    listed = [(r["irp"], r["arrive_ns"]) for i in detailed for r in i["irp_list"]]
    listed += [(r["irp"], r["arrive_ns"]) for r in a["never_completed"]["irps"]]
    stories, matter, _ = pick_stories(cmp, [(i, t) for i, t in listed
                                            if i is not None and t is not None],
                                      matter_count=inputs.matter)
    traced_text = traced.policy if traced is not None else None
    (timelines, sweep_charts), scripts = _charts_section(
        cmp, inputs, [(i["start_ns"], i["end_ns"]) for i in incidents], queue_ops,
        traced_text, stories, matter, sweep_doc)
    generated = datetime.now(tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    warnings = compare_doc["warnings"]
    body = [
        f"<h1>fpreplay report</h1><p class=\"muted\">{esc(', '.join(a['inputs']))} · memory "
        f"model {esc(compare_doc['memory'])} · fpreplay {__version__} · {generated}</p>",
        f'<p class="verdict">{esc(a["verdict"])}</p>',
        ('<ul class="warnings" id="warnings">' + "".join(f"<li>{esc(w)}</li>" for w in warnings)
         + "</ul>") if warnings else "",
        _next_steps(a, compare_doc, sweep_doc, args),
        '<nav><a href="#summary">Summary</a><a href="#compare">Policies</a>'
        '<a href="#timelines">Timelines</a><a href="#sweep">Sweep</a>'
        '<a href="#incidents">Incidents</a></nav>',
        *_summary(a),
        '<h2 id="compare">Policies against what happened</h2>',
        _traced_line(traced, cmp.policies),
        _table(COMPARE_HEAD, _compare_rows(compare_doc)),
        '<p class="muted">rescued: failed for real, delivered in the simulation; still failed: '
        'failed for real and again; regressed: served for real, failed in the simulation. '
        'Every count is a filter of the per-IRP table that <code>fpreplay compare -o</code> '
        'writes.</p>',
        '<h2 id="timelines">Timelines</h2>', timelines,
        '<h2 id="sweep">Reserve size</h2>', sweep_charts,
        _table(["reserved", "rescued", "still failed", "regressed", "parked", "park wait p50",
                "p99", "max", "reserve high water"],
               [[r["reserved"], r["rescued"], r["still_failed"], r["regressed"], r["parked"],
                 *render.fmt_waits(r), r["reserve_high_water"]]
                for r in sweep_doc["rows"]], left=0),
        _sweep_answers(sweep_doc),
        f'<h2 id="incidents">Low-memory incidents ({len(incidents)})</h2>',
        _incident_overview(incidents, detailed) if len(detailed) < len(incidents) else "",
        *([_incident_section(i, incidents_doc["policies"], t0, queue_ops) for i in detailed]
          or ["<p>No low-memory incident.</p>"]),
        '<div id="story" role="dialog" aria-label="IRP story"><button id="story-close" '
        'title="close">close</button><b>IRP story</b> <span class="muted">(as <code>fpreplay '
        'compare --explain</code> tells it)</span><pre id="story-text"></pre></div>',
    ]
    return page(f"fpreplay report: {', '.join(a['inputs'])}", body, scripts, stories)


def story_json(stories: dict[str, str]) -> str:
    """The stories as JSON that cannot close its script element or open markup."""
    return (json.dumps(stories, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))


def page(title: str, body: list[str], scripts: list[str], stories: dict[str, str]) -> str:
    """The document: style, body, the charting library and chart data, then the page's script."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{''.join(body)}"
            f'<script type="application/json" id="fp-stories">{story_json(stories)}</script>'
            f"{''.join(scripts)}<script>{PAGE_JS}</script></body></html>\n")

