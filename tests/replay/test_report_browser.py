"""`fpreplay report` in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
.ci/run) driven by Playwright for Python, pages loaded from file:// with every request that
would leave the page refused and counted. Skipped, saying why, where Chromium or Playwright is
absent (Playwright's own browser download is never used)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from fpreplay.replay.cli import main
from scenario_tables import scenario_events

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAMPLES = Path(__file__).parents[2] / "traces" / "samples"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (Debian package "
                       "`chromium`; .ci/run installs it)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the 'test' extra) is "
                               "not installed")

# The Bokeh document has drawn when every root view exists; figures expose their data sources.
DRAWN = "window.Bokeh && Bokeh.documents.length > 0 && Bokeh.index.roots.length > 0"
CHART_DATA = """() => {
  const out = {};
  for (const view of Bokeh.index.roots) {
    const m = view.model;
    if (m.type !== 'Figure') { continue; }
    out[m.title.text] = m.renderers.filter(r => r.data_source).map(r => r.data_source.get_length());
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Visit:
    """A page loaded from file:// with its console errors, uncaught errors, dialogs (alert,
    confirm, prompt) and refused requests (anything not file: or data:) recorded."""

    def __init__(self, browser, path: Path):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.outside: list[str] = []
        self.page = browser.new_page(viewport={"width": 1200, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function(DRAWN, timeout=30_000)
        self.page.wait_for_timeout(300)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def close(self):
        self.page.close()


def _report(tmp_path: Path, capsys, *args) -> Path:
    out = tmp_path / "report.html"
    rc = main(["report", *map(str, args), "-o", str(out), "-q"])
    assert rc == 0, capsys.readouterr()[1]
    return out


@pytest.mark.parametrize("sample", ["b-pool-ran-dry", "c-purge-during-incident", "d-healthy"])
def test_sample_report_loads_draws_and_stays_offline(browser, tmp_path, capsys, sample):
    visit = Visit(browser, _report(tmp_path, capsys, SAMPLES / sample / "trace.etl"))
    try:
        assert visit.errors == [] and visit.outside == [] and visit.dialogs == []
        charts = visit.page.evaluate(CHART_DATA)
        assert "IRPs in the driver (outstanding), as traced" in charts
        for title, sizes in charts.items():   # every chart drawn has data points
            assert sizes and all(n > 0 for n in sizes), (title, sizes)
        canvases = visit.page.locator(".chart").count()
        assert canvases == len(charts)
        if sample == "d-healthy":   # nothing parks or fails there: those charts are left out
            assert "IRPs parked waiting for a reserved request" not in charts
        else:
            assert "IRPs parked waiting for a reserved request" in charts
    finally:
        visit.close()


def test_click_on_an_irp_shows_its_story_and_zoom_follows_incidents(browser, tmp_path, capsys):
    visit = Visit(browser, _report(tmp_path, capsys, SAMPLES / "b-pool-ran-dry" / "trace.etl"))
    page = visit.page
    try:
        story = page.locator("#story")
        assert not story.is_visible()
        # a row of "IRPs that decided it"
        row = page.locator("tr[data-irp]").first
        key = row.get_attribute("data-irp")
        row.scroll_into_view_if_needed()
        row.click()
        assert story.is_visible()
        text = page.locator("#story-text").inner_text()
        assert text.startswith(f"IRP {key.split('@')[0]} arrived") and "actually:" in text
        assert "always:2" in text     # sample b's own policy is among those told
        page.locator("#story-close").click()
        assert not story.is_visible()

        # a point of the IRP chart: click where Bokeh drew it
        chart = page.locator(".chart").nth(4)
        chart.scroll_into_view_if_needed()
        where = page.evaluate("""() => {
          for (const view of Bokeh.index.roots) {
            if (!view.model.title.text.startsWith('IRPs whose outcome')) { continue; }
            const src = view.model.renderers.find(r => r.data_source.data.key).data_source;
            const f = view.frame;
            const box = view.el.getBoundingClientRect();
            return {key: src.data.key[0], x: box.left + f.x_scale.compute(src.data.x[0]),
                    y: box.top + f.y_scale.compute(src.data.policy[0])};
          }
        }""")
        page.mouse.click(where["x"], where["y"])
        page.wait_for_timeout(200)
        assert story.is_visible()
        assert page.locator("#story-text").inner_text().startswith(
            f"IRP {where['key'].split('@')[0]} arrived")

        # hover: the first chart tells the time and the value under the mouse
        page.locator(".chart").first.scroll_into_view_if_needed()
        middle = page.evaluate("""() => { const v = Bokeh.index.roots[0];
            const r = v.el.getBoundingClientRect(), b = v.frame.bbox;
            return {x: r.left + b.left + b.width * 0.47, y: r.top + b.top + b.height / 2}; }""")
        page.mouse.move(middle["x"], middle["y"])
        page.wait_for_timeout(300)
        tip = page.locator(".bk-Tooltip").first.evaluate("""e => [...(e.shadowRoot || e)
            .querySelectorAll('*')].filter(n => n.tagName !== 'STYLE' && !n.children.length)
            .map(n => n.textContent).join(' ')""")
        assert re.search(r"as traced time: ?\d+\.\d{6} s IRPs: ?\d+", " ".join(tip.split())), tip

        # zoom: the incident's button narrows the one shared time axis
        before = page.evaluate("Bokeh.documents[0].get_model_by_name('time-axis').end")
        page.locator("button.zoom").first.click()
        after = page.evaluate("""() => { const r = Bokeh.documents[0].get_model_by_name(
            'time-axis'); return [r.start, r.end]; }""")
        assert 0 < after[0] < after[1] < before
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


def test_hostile_names_stay_text(browser, tmp_path, capsys):
    """`<script>` in device, queue and event names and in the file name: shown as text, never
    run, no markup injected."""
    bad = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    ev = scenario_events().with_columns(
        pl.when(pl.col("device").is_not_null()).then(pl.lit(bad)).otherwise(None).alias("device"),
        pl.lit(f"q{bad}").alias("queue"))
    folder = tmp_path / "<script>alert(3)<"
    folder.mkdir()
    trace = folder / "<b>x.parquet"
    ev.write_parquet(trace)
    out = _report(tmp_path, capsys, trace, "--policy", "always:1")
    html = out.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img" not in html
    visit = Visit(browser, out)
    page = visit.page
    try:
        assert visit.dialogs == [] and visit.errors == [] and visit.outside == []
        assert page.locator("img").count() == 0 and page.locator("b:has-text('x.parquet')") \
            .count() == 0
        assert bad in page.locator("body").inner_text()     # the name, as text
        row = page.locator("tr[data-irp]").first
        row.scroll_into_view_if_needed()
        row.click()
        assert bad in page.locator("#story-text").inner_text()
        page.wait_for_timeout(200)
        assert visit.dialogs == [] and page.locator("img").count() == 0
    finally:
        visit.close()
