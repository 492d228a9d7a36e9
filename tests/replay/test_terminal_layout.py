"""What the terminal shows, at 80 columns (a terminal's usual width, and what fpreplay lays out
for when stdout is piped) and wide: every line fits, no cell is broken, every heading is in its
legend, every command to run next is on one line; and one recommendation across commands."""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path

import polars as pl
import pytest

from fpreplay.replay.cli import main
from terminal_text import commands, tables, words

SAMPLES = Path(__file__).resolve().parents[2] / "traces" / "samples"
EXAMINE = "examine:8:paging OR major = 4"


def _run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _cases(sample: str) -> list[list[str]]:
    inputs = ["trace.etl"] + (["ifr.txt", "--tz", "UTC"] if sample.startswith("c-") else [])
    pol = ["--policy", "always:2", "--policy", "paging:8", "--policy", EXAMINE]
    return [["analyze", *inputs], ["compare", *inputs, *pol], ["sweep", *inputs, "--budget", "2ms"],
            ["incidents", *inputs, *pol], ["compare", *inputs, "--memory", "verifier-random",
                                           "--policy", "always:2", "--policy", EXAMINE]]


SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "trace.etl").is_file()) \
    if SAMPLES.is_dir() else []


@pytest.fixture(scope="module")
def outputs():
    """Every command's output on every sample at 80 and 160 columns, with its JSON document."""
    return {}


def _outputs(capsys, monkeypatch, sample: str, width: int):
    monkeypatch.chdir(SAMPLES / sample)      # short paths: a command to paste fits 80 columns
    monkeypatch.setenv("COLUMNS", str(width))
    found = []
    for args in _cases(sample):
        rc, out, err = _run(capsys, *args, "-q")
        assert rc == 0, (args, err)
        rc, doc, err = _run(capsys, *args, "-q", "--json")
        found.append((args, out, json.loads(doc)))
    return found


def _names(doc: dict) -> set[str]:
    """The names a user looks for whole: devices, queues, policies, IRP addresses."""
    names = {r["name"] for key in ("by_device", "by_queue") for r in doc.get(key, [])}
    names |= {p["policy"] for p in doc.get("policies", []) if isinstance(p, dict)}
    if doc.get("incidents"):
        names |= {p for p in doc.get("policies", []) if isinstance(p, str)}
    names |= {f"0x{r['irp']:x}" for r in doc.get("never_completed", {}).get("irps", [])[:20]}
    for i in doc.get("incidents", []):
        names |= set(i.get("devices", []))
        names |= {f"0x{r['irp']:x}" for r in i.get("irp_list", [])[:20]}
    return names


@pytest.mark.parametrize("width", [80, 160])
@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_every_line_fits_and_no_cell_is_broken(capsys, monkeypatch, sample, width):
    for args, out, doc in _outputs(capsys, monkeypatch, sample, width):
        pasted = {f"  {c}" for c in commands(out)}
        for line in out.splitlines():
            assert len(line) <= width or line in pasted, (args, line)
        lines = out.splitlines()
        for name in _names(doc):
            # whole on one line: in its cell, or (abbreviated) in the numbered note below
            assert any(name in line for line in lines), (args, name, out)
        for t in tables(out):
            assert len(t["rule"]) <= width, args
            # headings are one word each: a heading is never broken over two lines
            assert all(h for h in t["headings"])
        assert "`" not in out, args


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_every_heading_is_explained_in_its_legend(capsys, monkeypatch, sample):
    for args, out, _ in _outputs(capsys, monkeypatch, sample, 80):
        found = tables(out)
        assert found or "No low-memory incident." in out, args
        for t in found:
            legend = t["legend"]
            assert legend.startswith("Columns: "), (args, t)
            for h in t["headings"]:
                assert re.search(rf"(Columns: |; |, ){re.escape(h)}( =|,)", legend), \
                    (args, h, legend)
            for short in re.findall(r"\b(P\d+)\b", " ".join(t["headings"])):
                assert f"{short} = " in out     # which policy a P-heading stands for


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_next_commands_are_one_line_each_and_run(capsys, monkeypatch, sample):
    """However narrow the terminal, a command to run next is printed on one line of its own
    (pasted whole), and it runs."""
    for args, out, _ in _outputs(capsys, monkeypatch, sample, 40):
        cmds = commands(out)
        if "Next:" in out:
            assert cmds, (args, out)
        text = "\n".join(line for line in out.splitlines() if f"  {line.strip()}" not in
                         {f"  {c}" for c in cmds})
        assert "fpreplay " not in text, (args, out)    # no command broken into the prose
        for c in cmds:
            words_ = shlex.split(c)
            assert words_[0] == "fpreplay" and "trace.etl" in words_, c
    # the first command of the last output runs as printed
    rc, _, err = _run(capsys, *shlex.split(cmds[0])[1:], "-q")
    assert rc == 0, err


def test_a_long_examine_rule_is_abbreviated_with_its_whole_name_below(capsys, monkeypatch):
    monkeypatch.chdir(SAMPLES / "a-paging-storm")
    monkeypatch.setenv("COLUMNS", "80")
    rc, out, _ = _run(capsys, "compare", "trace.etl", "-q", "--policy", "always:2",
                      "--policy", "examine:8:paging OR major = 4 OR bytes > 65536")
    (t,) = tables(out)
    assert t["headings"] == ["policy", "rescued", "failed", "regress", "parked", "p50", "p99",
                             "max", "water"]
    row = next(r for r in t["rows"] if r.startswith("examine:8:"))
    assert re.match(r"examine:8:[^…]*…\[1\]\s+231\s+48\s+0\s+0(\s+-){3}\s+3$", row), row
    assert "[1] examine:8:paging OR major = 4 OR bytes > 65536" in out.splitlines()


# --- -o: text beside the numbers ----------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".parquet"])
def test_o_tables_carry_hex_and_names_beside_the_numbers_in_text_formats(capsys, tmp_path,
                                                                         suffix):
    trace = SAMPLES / "c-purge-during-incident" / "trace.etl"
    out = tmp_path / f"per-irp{suffix}"
    rc, shown, err = _run(capsys, "compare", trace, "--policy", "always:2", "-o", out)
    assert rc == 0, err
    df = {".csv": pl.read_csv, ".ndjson": pl.read_ndjson, ".parquet": pl.read_parquet}[suffix](out)
    text = suffix != ".parquet"
    for twin in ("irp_hex", "major_name", "status_name", "always:2:status_name"):
        assert (twin in df.columns) == text, (twin, df.columns)
    assert df.schema["irp"].is_integer() and df.schema["status"].is_integer()
    if text:
        cols = df.columns
        assert cols.index("irp_hex") == cols.index("irp") + 1
        row = df.filter(pl.col("actual") == "alloc_failed").row(0, named=True)
        assert row["irp_hex"] == f"0x{row['irp']:x}"
        assert row["major_name"] in ("READ", "WRITE")
        statuses = dict(df.select("status", "status_name").unique().iter_rows())
        assert statuses[0] == "STATUS_SUCCESS"
        assert statuses.get(0xC0000120, "STATUS_CANCELLED") == "STATUS_CANCELLED"
        # the queue is the hex text the terminal shows
        assert re.fullmatch(r"0x[0-9a-f]+", df["queue"].drop_nulls()[0])


# --- one recommendation -------------------------------------------------------------------------

def _report_advice(capsys, tmp_path, *args) -> str:
    page = tmp_path / "r.html"
    rc, _, err = _run(capsys, "report", *args, "-q", "-o", page)
    assert rc == 0, err
    text = page.read_text(encoding="utf-8")
    paras = re.findall(r'<p class="next">(.*?)</p>', text, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", p)) for p in paras)


def test_compare_sweep_report_and_batch_recommend_the_same_reserve(capsys, tmp_path):
    """Sample b: the driver's always:2 parked 177 IRPs. compare, sweep, report and batch apply
    the one rule (the smallest reserve with which no IRP waits parked) and name always:6; with
    a 2 ms budget, sweep and report both name the smallest whose p99 wait fits it."""
    b = SAMPLES / "b-pool-ran-dry"
    trace = b / "trace.etl"
    cmp = json.loads(_run(capsys, "compare", trace, "-q", "--json", "--policy", "always:2",
                          "--policy", "always:8", "--policy", "paging:2")[1])
    sw = json.loads(_run(capsys, "sweep", trace, "-q", "--json")[1])
    assert cmp["recommendation"]["policy"] == sw["recommendation"]["policy"] == "always:6"
    assert sw["min_reserved_no_park"] == 6
    # only always:2 compared: the rule measures the peak demand, not "the best of those shown"
    only = json.loads(_run(capsys, "compare", trace, "-q", "--json", "--policy",
                           "always:2")[1])
    assert only["recommendation"]["policy"] == "always:6"
    text = words(_run(capsys, "compare", trace, "-q", "--policy", "always:2", "--policy",
                      "always:8")[1])
    assert "Recommended: always:6: the smallest reserve at which no IRP waits parked" in text
    assert "Trade-off: always:2 parks 176 (p99 wait 8.69 ms); always:6 parks 0; always:8 " \
           "parks 0." in text
    assert "Recommended: always:6" in words(_run(capsys, "sweep", trace, "-q")[1])
    assert "Recommended: always:6" in _report_advice(capsys, tmp_path, trace)
    rc, out, err = _run(capsys, "batch", b, "-o", tmp_path / "ds", "-q", "--json")
    assert rc == 0, err
    assert json.loads(out)["fleet"]["recommended_reserved"] == 6
    # with a budget: the smallest reserve whose p99 park wait fits 2 ms, in both
    budget = json.loads(_run(capsys, "sweep", trace, "-q", "--json", "--budget", "2ms")[1])
    n = budget["recommendation"]["reserved"]
    assert n == budget["min_reserved_within_budget"] == 4
    assert f"Recommended: always:{n}" in _report_advice(capsys, tmp_path, trace, "--budget",
                                                        "2ms")
    # a sweep of another kind never sends the reader to a policy the recommendation ranks lower
    advice = _report_advice(capsys, tmp_path, trace, "--kind", "paging")
    assert "Recommended: always:6" in advice
    assert "paging:6 replayed" not in advice and "--policy paging" not in advice


def test_a_healthy_trace_needs_no_reserve_in_every_command(capsys, tmp_path):
    """Sample d: nothing waited for a request. compare and sweep recommend no reserve (reserved 0,
    no policy), as batch's needed_reserved 0 says, instead of a reserve of 1."""
    trace = SAMPLES / "d-healthy" / "trace.etl"
    cmp = json.loads(_run(capsys, "compare", trace, "-q", "--json", "--policy", "always:2")[1])
    sw = json.loads(_run(capsys, "sweep", trace, "-q", "--json")[1])
    for doc in (cmp, sw):
        assert (doc["recommendation"]["policy"], doc["recommendation"]["reserved"]) == (None, 0)
    assert "no reserve was needed" in words(_run(capsys, "sweep", trace, "-q")[1])
    rc, out, err = _run(capsys, "batch", SAMPLES / "d-healthy", "-o", tmp_path / "ds", "-q",
                        "--json")
    assert rc == 0, err
    assert json.loads(out)["fleet"]["recommended_reserved"] == 0


# --- width: piped output, and what a narrow terminal leaves out ---------------------------------

def test_piped_output_without_columns_lays_out_for_80(tmp_path):
    """`fpreplay compare ... | less` with no COLUMNS set: laid out for 80 columns (issue 14 saw
    100), every line fits but the commands to paste."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-m", "fpreplay", "compare", "trace.etl", "--policy",
                           "always:2", "--policy", EXAMINE, "-q"], cwd=SAMPLES / "a-paging-storm",
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    pasted = {f"  {c}" for c in commands(out)}
    assert max(len(line) for line in out.splitlines() if line not in pasted) <= 80
    assert max(len(t["rule"]) for t in tables(out)) > 60    # laid out for 80, not squeezed


def test_a_column_left_out_for_width_is_named_and_a_wider_terminal_shows_it(capsys,
                                                                            monkeypatch):
    monkeypatch.chdir(SAMPLES / "a-paging-storm")
    shown = {}
    for width in (60, 160):
        monkeypatch.setenv("COLUMNS", str(width))
        rc, out, err = _run(capsys, "analyze", "trace.etl", "-q")
        assert rc == 0, err
        shown[width] = out
    narrow = words(shown[60])
    left_out = re.findall(r"Not shown at this width: ([\w, ]+?) \(a wider terminal or --json "
                          r"shows them\)", narrow)
    assert left_out, shown[60]
    wide_heads = {h for t in tables(shown[160]) for h in t["headings"]}
    narrow_heads = {h for t in tables(shown[60]) for h in t["headings"]}
    for names in left_out:
        for name in names.split(", "):
            assert name in wide_heads, (name, wide_heads)
    assert wide_heads - narrow_heads
