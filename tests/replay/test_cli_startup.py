"""`fpreplay --version`, `--help` and their short forms start without importing the layers below
the CLI: polars, numpy, the engine, whatif, render, parsers and rich load only when a command
runs (issue 14: start-up under 0.15 s). A behaviour test, not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("polars", "numpy", "rich", "fpreplay.engine", "fpreplay.replay.whatif",
         "fpreplay.replay.render", "fpreplay.replay.batch", "fpreplay.parsers",
         "fpreplay.lifecycles", "fpreplay.schema")

_PROBE = """
import io, json, sys, contextlib
from fpreplay.replay.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _run(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["--help"], ["-h"], ["analyze", "-h"],
                                  ["compare", "--help"]])
def test_version_and_help_import_no_heavy_module(args):
    got = _run(*args)
    assert got["rc"] == 0
    loaded = [m for m in got["modules"]
              if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not loaded, f"fpreplay {' '.join(args)} imported {loaded[:8]}"
    if args[0] in ("--version", "-V"):
        assert got["out"].startswith("fpreplay ")
    else:
        assert "Usage: fpreplay" in got["out"]


def test_options_parsed_by_the_library_still_are():
    """The parsers an option names by module (--policy: fpreplay.engine) are imported when the
    option is parsed: a bad policy is still one line naming the option, exit 2."""
    done = subprocess.run([sys.executable, "-m", "fpreplay", "compare", "any.etl", "--policy",
                           "always:x"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("fpreplay: --policy: ") and len(done.stderr.splitlines()) == 1
