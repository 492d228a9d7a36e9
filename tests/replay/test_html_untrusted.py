"""Untrusted text never runs in an HTML page fpreplay writes (issue 12): device, queue and event
names and file names from a customer's trace reach every HTML output escaped. Generic: every
command that writes HTML with -o is found and run, so a report added later is covered too."""

from __future__ import annotations

from html.parser import HTMLParser

import polars as pl
import typer

from fpreplay.replay.cli import main
from fpreplay.replay.cli.app import app
from scenario_tables import scenario_events

PAYLOAD = '<script>fpXSS()</script><img src=x onerror="fpXSS()">" onmouseover="fpXSS()'
FILE_NAME = "<img src=x onerror=fpXSS()>.parquet"


class Attributes(HTMLParser):
    """Every tag and attribute of a page, and the text inside <script> elements."""

    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _hostile_table(tmp_path):
    """The scenario table with the payload as every device, queue and event name."""
    df = scenario_events().with_columns(
        device=pl.when(pl.col("device").is_not_null()).then(pl.lit(PAYLOAD)),
        queue=pl.lit(PAYLOAD), event_name=pl.lit(PAYLOAD))
    path = tmp_path / FILE_NAME
    df.write_parquet(path)
    return path


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in getattr(p, "opts", ())}


def _html_commands() -> list:
    """Every command that takes -o (typer's click objects, whichever click it ships)."""
    group = typer.main.get_command(app)
    return [cmd for cmd in group.commands.values() if "-o" in _options(cmd)]


def test_untrusted_names_are_escaped_in_every_html_output(tmp_path, capsys):
    table = _hostile_table(tmp_path)
    written, tried = [], []
    for cmd in _html_commands():
        out = tmp_path / f"{cmd.name}.html"
        args = [cmd.name, str(table), "-o", str(out), "-q"]
        if "--policy" in _options(cmd):
            args += ["--policy", "always:1", "--policy", "examine:1:paging"]
        code = main(args)
        tried.append((cmd.name, code, capsys.readouterr().err[-300:]))
        pages = sorted(out.rglob("*.html")) if out.is_dir() else [out] if out.is_file() else []
        if code != 0 or not pages:
            continue                  # this command writes no HTML from an event table
        for page in pages:
            _check_escaped(f"{cmd.name}: {page.name}", page.read_text(encoding="utf-8"))
        written.append(cmd.name)
    assert "report" in written, tried               # at least the report was checked


def _check_escaped(name: str, html: str) -> None:
    """The payload reaches the page as text, never as markup, an attribute or script."""
    assert "fpXSS" in html, name
    assert "&lt;script&gt;fpXSS()&lt;/script&gt;" in html, name
    assert "<script>fpXSS" not in html and "fpXSS()</script>" not in html, name
    assert "<img" not in html.lower(), name
    page = Attributes()
    page.feed(html)
    assert not [a for a in page.attrs if "fpXSS" in a[2] and (a[1].startswith("on") or a[1] in (
        "src", "href", "srcdoc", "style"))], name    # in a value (escaped) it is only text
    # Inside a page's own script (an interactive report's data), the payload cannot close it.
    assert not [s for s in page.scripts if "fpXSS" in s and "</" in s.split("fpXSS", 1)[1]], name
