"""docs/untrusted-input.md names the tests that hold each promise: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_untrusted_input_page_names_exists():
    page = (ROOT / "docs" / "untrusted-input.md").read_text(encoding="utf-8")
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")}
    named = set(re.findall(r"\b(test_\w+)\b(?!\.py)", page))
    files = set(re.findall(r"`(tests/[\w/]+\.py)", page))
    assert len(named) > 30
    missing = [n for n in named if not any(
        re.search(rf"^def {n}\(", s, re.M) for s in sources.values())]
    assert not missing, missing
    assert all((ROOT / f).exists() for f in files), files
    assert "docs/untrusted-input.md" in (ROOT / "README.md").read_text(encoding="utf-8")
