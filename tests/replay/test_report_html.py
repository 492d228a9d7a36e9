"""`fpreplay report`: one self-contained HTML page. Parsed here (markup, and the Bokeh document
the page embeds); test_report_browser.py loads it in Chromium."""

from __future__ import annotations

import base64
import gzip
import html as html_module
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fpreplay.replay.render import terminal as render
from fpreplay.replay.cli import main
from scenario_tables import MS, write_scenario
from test_cli_ux import _healthy_trace   # nothing failed in it

POLICIES = ["--policy", "always:1", "--policy", "paging:1"]


class Page(HTMLParser):
    """Tags, attributes, ids and the text of every table row."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            self.attrs.append((k, v or ""))
            if k == "id":
                self.ids.add(v)
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def chart_models(page_html: str) -> list[dict]:
    """Every Bokeh model object of the page's embedded document (strings unescaped as BokehJS
    unescapes them)."""
    m = re.search(r"const docs_json = '(.*?)';\n", page_html, re.S)
    if not m:
        return []
    doc = next(iter(json.loads(m.group(1)).values()))
    out: list[dict] = []

    def walk(o):
        if isinstance(o, dict):
            if o.get("type") == "object":
                out.append(o)
            for k, v in o.items():
                if isinstance(v, str):
                    o[k] = html_module.unescape(v)
                walk(v)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                if isinstance(v, str):
                    o[i] = html_module.unescape(v)
                walk(v)
    walk(doc)
    return out


def figures(models: list[dict]) -> dict[str, dict]:
    """Figure title -> the figure's attributes, references to other models resolved."""
    by_id = {m["id"]: m for m in models}

    def resolve(o):
        if isinstance(o, dict):
            if set(o) == {"id"} and o["id"] in by_id:
                return resolve(by_id[o["id"]])
            return {k: resolve(v) for k, v in o.items()}
        if isinstance(o, list):
            return [resolve(v) for v in o]
        return o
    return {f["attributes"]["title"]["attributes"]["text"]: resolve(f["attributes"])
            for f in models if f["name"] == "Figure"}


def column(value) -> list[float]:
    """A ColumnDataSource column as numbers (a list, or Bokeh's base64 ndarray)."""
    if isinstance(value, list):
        return value
    raw = base64.b64decode(value["array"]["data"])
    if raw[:2] == b"\x1f\x8b":   # Bokeh gzips large arrays
        raw = gzip.decompress(raw)
    code = {"float64": "d", "float32": "f", "int32": "i", "int64": "q"}[value["dtype"]]
    return list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))


def lines_of(fig: dict) -> dict[str, list[float]]:
    """Legend label -> the y values of the line(s) it names."""
    out = {}
    for r in fig["renderers"]:
        a = r.get("attributes", {})
        if r.get("name") != "GlyphRenderer" or a.get("glyph", {}).get("name") != "Line":
            continue
        data = dict(a["data_source"]["attributes"]["data"]["entries"])
        out[a.get("name") or str(len(out))] = column(data["y"])
    return out


def legend_labels(fig: dict) -> list[str]:
    return [item["attributes"]["label"]["value"]
            for lg in fig.get("center", []) if lg.get("name") == "Legend"
            for item in lg["attributes"].get("items", [])]


@pytest.fixture
def report(tmp_path, capsys):
    trace = write_scenario(tmp_path)
    out = tmp_path / "report.html"
    rc = main(["report", str(trace), *POLICIES, "-o", str(out), "--service-time", "5ms",
               "--budget", "5ms"])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert f"wrote {out}" in err
    main(["compare", str(trace), *POLICIES, "--service-time", "5ms", "--json", "-q"])
    compare_doc = json.loads(capsys.readouterr()[0])
    return out, parse(out), compare_doc


def assert_self_contained(html: str, page: Page) -> None:
    """Nothing the page loads leaves it: no external script, style sheet, image or frame, no
    link but to an anchor, no CSS url(); the library's JavaScript is inline."""
    assert not {"link", "img", "iframe", "object", "embed", "base"} & set(page.tags)
    for k, v in page.attrs:
        assert k != "src", f"src={v}: the page loads something"
        if k == "href":
            assert v.startswith("#"), f"href={v} leaves the page"
        assert not re.match(r"\s*(https?:|//)", v), f"{k}={v}"
    # inline only: the stories (JSON), Bokeh, the charts, the page's own
    assert page.tags.count("script") >= 4
    style = html[html.index("<style>"):html.index("</style>")]
    assert "url(" not in style and "@import" not in style
    # (Bokeh's bundle names a MathJax CDN it fetches only for math text, which the page has
    # none of: the browser test fails on any request that leaves the page.)


def test_report_is_self_contained(report):
    out, page, _ = report
    assert_self_contained(out.read_text(encoding="utf-8"), page)


def test_report_draws_policies_overlaid_on_one_time_axis(report):
    out, page, _ = report
    html = out.read_text(encoding="utf-8")
    assert {"summary", "compare", "timelines", "sweep", "incidents", "incident-1"} <= page.ids
    figs = figures(chart_models(html))
    assert list(figs) == [
        "IRPs in the driver (outstanding), as traced",
        "IRPs parked waiting for a reserved request", "Reserved requests in use",
        "IRPs failed for want of memory (cumulative)",
        "IRPs whose outcome a policy changes, and IRPs that failed (click one for its story)",
        "IRPs against the reserve size (always:N)", "Park wait against the reserve size"]
    time_charts = list(figs.values())[:5]
    # one shared time axis (zoom one, all follow), the incident shaded on each
    assert len({f["x_range"]["id"] for f in time_charts}) == 1
    # the shaded band is the incident's window: where its zoom button narrows the axis to
    attrs = dict(page.attrs)
    window = (float(attrs["data-lo"]), float(attrs["data-hi"]))
    for f in time_charts:
        shades = [r for r in f["renderers"] if r["attributes"].get("name") == "incidents"]
        assert len(shades) == 1
        data = shades[0]["attributes"]["data_source"]["attributes"]["data"]["entries"]
        band = dict(data)
        assert list(zip(column(band["x0"]), column(band["x1"]))) == [pytest.approx(window)]
    # every policy on one chart, not one chart per policy
    parked = lines_of(figs["IRPs parked waiting for a reserved request"])
    assert set(parked) == {"always:1 (the driver's own)", "paging:1"}
    assert set(lines_of(figs["IRPs failed for want of memory (cumulative)"])) == {
        "as traced", "paging:1"}   # always:1 fails none: no line
    # the driver's own policy, read off the trace (one IRP served from a reserve of one)
    text = " ".join(" ".join(page.text).split())
    assert "The driver's own policy, always:1 (read off the trace:" in text


def test_report_axes_are_labelled_with_units_and_counts_tick_whole(report):
    out, _, _ = report
    models = chart_models(out.read_text(encoding="utf-8"))
    for title, f in figures(models).items():
        for axis in (*f["below"], *f["left"]):
            label = axis["attributes"].get("axis_label")
            assert label, (title, axis)
        x_label = f["below"][0]["attributes"]["axis_label"]
        assert "seconds" in x_label or "reserved requests N" in x_label, title
        y_axis = f["left"][0]["attributes"]
        if title.startswith("Park wait"):
            assert y_axis["axis_label"] == "park wait (ms)"
        elif y_axis["axis_label"] != "policy":   # a count: whole ticks only
            assert y_axis["ticker"]["attributes"]["min_interval"] == 1, title


def test_report_legend_names_only_what_is_drawn_and_p99_shows_over_max(report):
    out, _, _ = report
    figs = figures(chart_models(out.read_text(encoding="utf-8")))
    for title, f in figs.items():
        drawn = lines_of(f)
        for name, ys in drawn.items():
            assert any(ys), f"{title}: {name} is flat zero"
        if "policy" not in title:   # the IRP chart's legend names verdicts, not lines
            assert set(legend_labels(f)) == set(drawn), title
    waits = figs["Park wait against the reserve size"]
    styles = [(r["attributes"]["name"] if "name" in r["attributes"] else "",
               r["attributes"]["glyph"]["attributes"].get("line_width"))
              for r in waits["renderers"] if r["attributes"]["glyph"]["name"] == "Line"]
    labels = legend_labels(waits)
    assert labels.index("max park wait") < labels.index("p99 park wait")   # p99 drawn last
    widths = [w for _, w in styles if w]
    assert max(widths) == widths[1] > widths[0]                          # and thicker


def test_report_numbers_are_the_json_numbers(report):
    _, page, doc = report
    table: dict[str, list[str]] = {}
    for r in page.rows:     # the first such rows are the whole-trace comparison
        if r and r[0] in ("actual", "always:1", "paging:1"):
            table.setdefault(r[0], r[1:])
    for row in [doc["observed"], *doc["policies"]]:
        w = row["park_wait_ns"]
        expected = [str(row[k]) for k in ("rescued", "still_failed", "regressed", "parked")]
        expected += ([render.fmt_duration(w[k]) for k in ("p50", "p99", "max")]
                     if row["parked"] else ["-", "-", "-"])   # nothing parked: no wait
        expected += [str(row[k]) for k in ("cancelled", "invalid_state", "reserve_high_water")]
        assert table[row["policy"]] == expected
    assert table["always:1"][:7] == ["3", "0", "0", "2", "4 ms", "8 ms", "8 ms"]
    head = next(i for i, r in enumerate(page.rows) if r[:2] == ["reserved", "rescued"])
    sweep = page.rows[head + 1: head + 4]
    assert [r[4] for r in sweep] == ["2", "1", "0"]        # parked at N = 1, 2, 3
    text = " ".join(" ".join(page.text).split())
    assert "Smallest reserve at which nothing parks (always): 3" in text
    assert "smallest whose p99 park wait fits 5 ms: 2" in text
    # The IRPs that decided the incident, with each policy's outcome.
    irp_rows = {r[0]: r for r in page.rows if r and r[0].startswith("0x2")}
    assert irp_rows["0x2003"][-2:] == ["parked_reserved (rescued)", "refused (still_failed)"]
    assert MS == 1_000_000


def stories_of(html: str) -> dict[str, str]:
    blob = re.search(r'<script type="application/json" id="fp-stories">(.*?)</script>', html,
                     re.S).group(1)
    return json.loads(blob)


def test_each_listed_irp_tells_the_explain_story(report, tmp_path, capsys):
    out, _, _ = report
    html = out.read_text(encoding="utf-8")
    stories = stories_of(html)
    keys = re.findall(r'<tr data-irp="([^"]+)"', html)
    assert keys and set(keys) <= set(stories)
    # the story is what `compare --explain` prints for that IRP
    key = next(k for k in keys if k.startswith("0x2003@"))
    trace = tmp_path / "scenario.parquet"
    assert main(["compare", str(trace), *POLICIES, "--service-time", "5ms", "--explain",
                 "0x2003", "-q"]) == 0
    told = capsys.readouterr()[0]
    story_lines = stories[key].splitlines()
    assert story_lines[0].startswith("IRP 0x2003 arrived")
    for line in story_lines:
        assert " ".join(line.split()) in " ".join(told.split()), line


def test_story_count_is_bounded(tmp_path):
    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers import read_inputs
    from fpreplay.replay import whatif
    from fpreplay.replay.render.html_timelines import pick_stories

    irps = build_lifecycles(read_inputs([write_scenario(tmp_path)]).events)
    cmp = whatif.compare(irps, ["always:1", "paging:1"])
    every, matter, told = pick_stories(cmp, [])
    assert told == matter == len(every) >= 4
    some, matter, told = pick_stories(cmp, [], limit=2)
    assert told == len(some) == 2 < matter
    # changed outcomes come first
    changed = {k for k, t in every.items() if "[rescued]" in t or "[regressed]" in t}
    assert set(some) <= changed
    # an IRP a table lists is told whatever the bound
    first = next(iter(every))
    irp, arrive = first.split("@")
    assert first in pick_stories(cmp, [(int(irp, 16), int(arrive))], limit=0)[0]


def test_many_incidents_get_a_row_each_and_the_worst_a_section(tmp_path, capsys):
    """A long trace's hundreds of incidents: the page lists each in an overview and details only
    the INCIDENT_DETAIL_LIMIT with the most failed IRPs, so its size and stories stay bounded."""
    from fpreplay.replay.render.html import INCIDENT_DETAIL_LIMIT

    sample = Path(__file__).parents[2] / "traces" / "samples" / "a-paging-storm" / "trace.etl"
    main(["incidents", str(sample), "--gap", "10ms", "--json", "-q"])
    incidents = json.loads(capsys.readouterr()[0])["incidents"]
    assert len(incidents) > INCIDENT_DETAIL_LIMIT   # the gap splits the storm into many
    out = tmp_path / "r.html"
    assert main(["report", str(sample), "--gap", "10ms", "-o", str(out)]) == 0
    page = parse(out)
    sections = {int(i.removeprefix("incident-")) for i in page.ids if i.startswith("incident-")}
    failed = {i["incident"]: i["alloc_failed"] + i["refused"] for i in incidents}
    assert len(sections) == INCIDENT_DETAIL_LIMIT
    # the detailed ones fail at least as many IRPs as any left out
    assert min(failed[n] for n in sections) >= max(
        f for n, f in failed.items() if n not in sections)
    overview = [r for r in page.rows if len(r) == 8 and r[0].isdigit()
                and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+", r[1])]
    assert [int(r[0]) for r in overview] == [i["incident"] for i in incidents]
    html = out.read_text(encoding="utf-8")
    assert all(f'href="#incident-{n}"' in html for n in sections)
    assert "fpreplay incidents TRACE --json" in " ".join(page.text)


def test_report_options(tmp_path, capsys):
    trace = write_scenario(tmp_path)
    cfg = tmp_path / "driver.toml"
    cfg.write_text('[[queues]]\nname = "default"\n')
    tmf = tmp_path / "tmf"
    tmf.mkdir()
    from fpreplay.synth.wpp import write_tmf_dir

    write_tmf_dir(tmf)   # --tmf must name real TMF files (an empty directory is refused)
    out = tmp_path / "r.htm"
    rc = main(["report", str(trace), "--output", str(out), "--kind", "paging", "--max", "2",
               "--gap", "50ms", "--config", str(cfg), "--memory", "observed", "--seed", "1",
               "--range", "0", "5", "--tmf", str(tmf), "--tz", "UTC", "--provider", "X",
               "--quiet", "--budget", "1ms", "--service-time", "5ms"])
    _, err = capsys.readouterr()
    assert rc == 0 and err == ""
    page = parse(out)
    # Without --policy: none, always:PEAK, paging:PEAK and the driver's own (always:1); a 50 ms
    # gap makes two incidents.
    assert "incident-2" in page.ids
    assert [r[0] for r in page.rows if r and r[0] in ("none", "always:3", "paging:3",
                                                      "always:1")][:4] == [
        "none", "always:3", "paging:3", "always:1"]
    text = " ".join(" ".join(page.text).split())
    assert "Smallest reserve at which nothing parks (paging): 2" in text


def test_the_config_names_the_drivers_policy(tmp_path, capsys):
    trace = write_scenario(tmp_path)
    cfg = tmp_path / "driver.toml"
    cfg.write_text('[[queues]]\nname = "default"\npolicy = "paging:2"\n')
    out = tmp_path / "r.html"
    assert main(["report", str(trace), "--config", str(cfg), "--policy", "always:4", "-o",
                 str(out), "-q"]) == 0
    text = " ".join(" ".join(parse(out).text).split())
    assert "The driver's own policy, paging:2 (the driver config's policy)" in text


def test_charts_with_nothing_to_draw_are_left_out_and_named(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(_healthy_trace(tmp_path)), "--policy", "always:2", "-o", str(out),
                 "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    assert list(figures(chart_models(html))) == ["IRPs in the driver (outstanding), as traced"]
    text = " ".join(" ".join(parse(out).text).split())
    assert ("Left out, nothing to draw: IRPs parked waiting for a reserved request; Reserved "
            "requests in use; IRPs failed for want of memory (cumulative)") in text
    assert "The driver's own policy is not shown: no request allocation failed" in text


def test_warnings_stand_under_the_verdict(tmp_path, capsys):
    sample = Path(__file__).parents[2] / "traces" / "samples" / "b-pool-ran-dry" / "trace.etl"
    out = tmp_path / "r.html"
    assert main(["report", str(sample), "-o", str(out), "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    verdict, warnings = html.index('class="verdict"'), html.index('id="warnings"')
    assert verdict < warnings < html.index('id="summary"')
    assert "name their device in more than one source" in html[warnings:html.index("</ul>",
                                                                                   warnings)]
    # sample b's driver had always:2: it is among the policies though not a default
    rows = [r[0] for r in parse(out).rows if r]
    assert "always:2" in rows


def test_long_tables_scroll_in_their_box(tmp_path):
    from fpreplay.replay.render.html import SCROLL_ROWS, _table

    short = _table(["a"], [[1]] * SCROLL_ROWS)
    long = _table(["a"], [[1]] * (SCROLL_ROWS + 1))
    assert 'class="scroll"' not in short and long.startswith('<div class="scroll">')


def test_every_chart_zooms_pans_and_tells_its_values_on_hover(report):
    """Each chart's toolbar: pan and wheel zoom along time active (a drag pans, the wheel
    zooms), box zoom and reset; a hover tool on each chart that draws data."""
    out, _, _ = report
    for title, f in figures(chart_models(out.read_text(encoding="utf-8"))).items():
        bar = f["toolbar"]["attributes"]
        tools = {t["name"] for t in bar["tools"]}
        assert {"PanTool", "WheelZoomTool", "BoxZoomTool", "ResetTool", "HoverTool"} <= tools, \
            (title, tools)
        assert bar["active_drag"]["name"] == "PanTool", title
        assert bar["active_scroll"]["name"] == "WheelZoomTool", title
