"""The examples in README.md and docs/*.md are what fpreplay prints: a code block that opens
with `$ fpreplay ...` (continued by trailing backslashes) is run, at 80 columns from the
checkout's root, and each of its other lines must appear in the output, in order (`...` stands
for lines left out)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fpreplay.replay.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"^```\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M):
            lines = block.splitlines()
            if not lines or not lines[0].startswith("$ fpreplay "):
                continue
            command = lines.pop(0)[2:]
            while command.endswith("\\"):
                command = command[:-1] + lines.pop(0).strip()
            found.append((doc.name, command, lines))
    return found


EXAMPLES = examples()


def test_the_readme_has_checked_examples():
    assert {name for name, _, _ in EXAMPLES} >= {"README.md"}
    assert any(c.startswith("fpreplay compare ") for _, c, _ in EXAMPLES)


@pytest.mark.parametrize("doc,command,expected", EXAMPLES,
                         ids=[f"{d}:{c[:60]}" for d, c, _ in EXAMPLES])
def test_example_output_is_what_fpreplay_prints(capsys, monkeypatch, doc, command, expected):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")
    rc = main(shlex.split(command)[1:] + ["-q"])
    out = capsys.readouterr().out
    assert rc == 0
    printed = [line.rstrip() for line in out.splitlines()]
    at = 0
    for line in expected:
        if line.strip() == "...":
            continue
        want = line.rstrip()
        assert want in printed[at:], (f"{doc}: the example of `{command}` shows a line "
                                      f"fpreplay no longer prints (or not in this order):\n"
                                      f"{want!r}\n--- printed:\n{out}")
        at = printed.index(want, at) + 1


# --- the library's examples: ```python blocks of `>>>` lines, run with doctest ------------------
def library_examples() -> list[tuple[str, str]]:
    """Per document, its Python examples as one doctest text (later blocks build on earlier)."""
    found = []
    for doc in DOCS:
        blocks = re.findall(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"),
                            re.S | re.M)
        text = "\n".join(b for b in blocks if b.lstrip().startswith(">>>"))
        if text:
            found.append((doc.name, text))
    return found


LIBRARY_EXAMPLES = library_examples()


def test_the_readme_and_the_library_guide_have_library_examples():
    assert {name for name, _ in LIBRARY_EXAMPLES} >= {"README.md", "library.md"}


@pytest.mark.parametrize("doc,text", LIBRARY_EXAMPLES, ids=[d for d, _ in LIBRARY_EXAMPLES])
def test_library_examples_return_what_they_show(monkeypatch, doc, text):
    import doctest

    monkeypatch.chdir(ROOT)
    test = doctest.DocTestParser().get_doctest(text, {}, doc, doc, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0 and test.examples, "".join(report)


def test_the_library_module_examples_run(monkeypatch):
    import doctest

    from fpreplay.replay import api

    monkeypatch.chdir(ROOT)
    result = doctest.testmod(api, verbose=False)
    assert result.attempted and not result.failed


# --- pictures and links -------------------------------------------------------------------------
SAMPLES_WITH_REPORTS = ("a-paging-storm", "b-pool-ran-dry", "c-purge-during-incident",
                        "d-healthy")


def test_every_relative_link_and_picture_of_the_docs_exists():
    """README's first picture, docs/screenshots and every relative link resolve in the checkout
    (a link that 404s on the repository page is what a new user meets first)."""
    broken, checked = [], 0
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            checked += 1
            if not (doc.parent / target.split("#")[0]).exists():
                broken.append(f"{doc.name}: {target}")
    assert checked and not broken, broken


def test_the_readme_opens_on_a_report_and_each_sample_has_its_screenshot():
    first = re.search(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text("utf-8"))
    assert first and first.group(1).startswith("docs/screenshots/")
    for sample in SAMPLES_WITH_REPORTS:
        png = ROOT / "docs" / "screenshots" / f"{sample}.png"
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", png
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 800 and height >= 600, (png, width, height)
        assert f'"{sample}"' in (ROOT / "docs" / "make_screenshots.py").read_text("utf-8")
