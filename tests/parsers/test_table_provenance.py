"""An event table written by `fpreplay events` keeps what reading found beside the events
(issue 12: sample a's 8 lost events became "events lost 0" after a Parquet round trip): Parquet
key-value metadata carries the lost-event counts, lost windows and warnings; CSV and NDJSON
cannot, and writing one says so. The metadata is untrusted input like the rest of the file."""

from __future__ import annotations

import json
import time

import polars as pl

from conftest import SAMPLES
from fpreplay.parsers.table import PROVENANCE_KEY
from fpreplay.replay.cli import main

STORM = SAMPLES / "a-paging-storm" / "trace.etl"          # 8 events lost


def _json(capsys, *args) -> dict:
    assert main([*map(str, args), "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_parquet_round_trip_keeps_lost_events_and_warnings(tmp_path, capsys):
    table = tmp_path / "a.parquet"
    t0 = time.perf_counter()
    main(["events", str(STORM), "-o", str(table), "-q"])
    direct = _json(capsys, "analyze", STORM)
    again = _json(capsys, "analyze", table)
    assert time.perf_counter() - t0 < 60
    assert direct["events_lost"] == again["events_lost"] == 8
    assert any("lost events (8" in w for w in again["warnings"]), again["warnings"]
    # Everything analyze says is the same but the input's name (lost windows included: the
    # lifecycles open across a lost buffer are warned about again).
    assert {k: v for k, v in direct.items() if k != "inputs"} == \
        {k: v for k, v in again.items() if k != "inputs"}


def test_a_cut_traces_warning_survives_the_round_trip(tmp_path, capsys):
    cut = tmp_path / "cut.etl"
    data = STORM.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    table = tmp_path / "cut.parquet"
    main(["events", str(cut), "-o", str(table), "-q"])
    warnings = _json(capsys, "analyze", table)["warnings"]
    assert any(str(cut) in w and "trace cut short" in w for w in warnings), warnings


def test_csv_and_ndjson_say_what_they_cannot_keep(tmp_path, capsys):
    for suffix in ("csv", "ndjson"):
        out = tmp_path / f"a.{suffix}"
        doc = _json(capsys, "events", STORM, "-o", out)
        assert f"{out}: a {suffix.upper()} table has no place for the lost-event counts " \
            "(8 events, 0 buffers lost)" in " ".join(doc["warnings"]), doc["warnings"]
    # Nothing to lose, nothing said.
    quiet = _json(capsys, "events", SAMPLES / "b-pool-ran-dry" / "trace.etl", "-o",
                  tmp_path / "b.csv")
    assert not any("no place" in w for w in quiet["warnings"])


def test_hostile_provenance_metadata_is_checked(tmp_path, capsys):
    """Metadata from someone else's table: malformed JSON, wrong types and control characters
    are a warning or made printable, never a traceback."""
    table = tmp_path / "a.parquet"
    main(["events", str(STORM), "-o", str(table), "-q"])
    df = pl.read_parquet(table)
    good = json.loads(pl.read_parquet_metadata(table)[PROVENANCE_KEY])
    for meta, says in (("{", "metadata is unreadable"),
                       (json.dumps({**good, "events_lost": -5}), "bad count -5"),
                       (json.dumps({**good, "warnings": [{"x": 1}]}), "not a list of text"),
                       ("[" * 100_000 + "]" * 100_000, "metadata is unreadable")):
        bad = tmp_path / "bad.parquet"
        df.write_parquet(bad, metadata={PROVENANCE_KEY: meta})
        doc = _json(capsys, "analyze", bad)
        assert any(says in w and str(bad) in w for w in doc["warnings"]), doc["warnings"]
        assert doc["events_lost"] == 0
    ansi = tmp_path / "ansi.parquet"
    df.write_parquet(ansi, metadata={PROVENANCE_KEY: json.dumps(
        {**good, "warnings": ["\x1b[2Jcleared " + "x" * 10_000]})})
    doc = _json(capsys, "analyze", ansi)
    assert "?[2Jcleared " + "x" * 3988 in doc["warnings"]
    assert not any("\x1b" in w for w in doc["warnings"])
