"""`fpreplay report`: one self-contained HTML page. Parsed, never rendered (no Chromium here)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fpreplay.replay.render import terminal as render
from fpreplay.replay.cli import main
from scenario_tables import MS, write_scenario

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


def test_report_is_self_contained(report):
    out, page, _ = report
    html = out.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "url(" not in html
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    for k, v in page.attrs:
        if k in ("href", "src"):
            assert v.startswith("#"), f"{k}={v} leaves the page"


def test_report_has_every_section(report):
    _, page, _ = report
    assert {"summary", "compare", "timelines", "sweep", "incidents", "incident-1",
            "policy-always:1", "policy-paging:1"} <= page.ids
    # What actually happened (outstanding, and failures when some failed: 2), per policy
    # outstanding, reserved against N, parked (3 each), the sweep (2), the incident window (1).
    assert page.tags.count("svg") == 2 + 3 * 2 + 2 + 1
    text = " ".join(page.text)
    assert "1 low-memory incident: 3 of 10 IRPs failed for want of memory" in text
    assert "reserved requests in use against N = 1" in text


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
    # Without --policy: none, always:PEAK, paging:PEAK; a 50 ms gap makes two incidents.
    assert {"policy-none", "policy-always:3", "policy-paging:3", "incident-2"} <= page.ids
    text = " ".join(" ".join(page.text).split())
    assert "Smallest reserve at which nothing parks (paging): 2" in text
