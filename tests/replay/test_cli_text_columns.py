"""Every command with `-o` writes CSV and NDJSON with the text the terminal shows beside each
number (irp_hex, status_name, major_name: issue 14), Parquet with the typed columns only; and an
event table written so reads back as the same trace."""

from __future__ import annotations

import json

import polars as pl
import pytest

from conftest import SAMPLES
from fpreplay.replay.cli import main
from fpreplay.schema import text_twin

TRACE = SAMPLES / "c-purge-during-incident" / "trace.etl"
READERS = {".csv": pl.read_csv, ".ndjson": pl.read_ndjson, ".parquet": pl.read_parquet}
# command and its options -> the text twins its table has in CSV/NDJSON
TABLES = {
    "events": ((), ("irp_hex", "status_name", "major_name", "file_object_hex")),
    "irps": ((), ("irp_hex", "status_name", "major_name", "file_object_hex")),
    "analyze": ((), ("irp_hex", "status_name", "major_name", "file_object_hex")),
    "compare": (("--policy", "always:2"), ("irp_hex", "status_name", "major_name",
                                           "always:2:status_name")),
    # sweep and incidents tables hold no IRP, status or major: nothing to write twice.
    "sweep": ((), ()),
    "incidents": ((), ()),
}


def _write(tmp_path, command: str, suffix: str) -> pl.DataFrame:
    out = tmp_path / f"{command}{suffix}"
    options, _ = TABLES[command]
    assert main([command, str(TRACE), *options, "-o", str(out), "-q"]) == 0
    return READERS[suffix](out)


@pytest.mark.parametrize("command", sorted(TABLES))
def test_every_o_table_has_its_text_in_csv_and_ndjson_only(tmp_path, command, capsys):
    typed = _write(tmp_path, command, ".parquet")
    twins = TABLES[command][1]
    assert not [c for c in typed.columns if text_twin(c) in typed.columns], typed.columns
    for suffix in (".csv", ".ndjson"):
        df = _write(tmp_path, command, suffix)
        for twin in twins:
            assert twin in df.columns, (suffix, twin, df.columns)
            number = twin.rsplit("_", 1)[0]
            assert df.columns.index(twin) == df.columns.index(number) + 1
        assert [c for c in df.columns if c not in twins] == typed.columns, suffix
        assert df.height == typed.height
        if "irp_hex" in twins:
            row = df.filter(pl.col("irp").is_not_null()).row(0, named=True)
            assert row["irp_hex"] == f"0x{row['irp']:x}"
            names = dict(df.select("status", "status_name").drop_nulls().unique().iter_rows())
            assert names.get(0, "STATUS_SUCCESS") == "STATUS_SUCCESS"
            assert names.get(0xC000009A, "STATUS_INSUFFICIENT_RESOURCES") \
                == "STATUS_INSUFFICIENT_RESOURCES"
            majors = dict(df.select("major", "major_name").drop_nulls().unique().iter_rows())
            assert majors[3] == "READ" and majors[4] == "WRITE"

@pytest.mark.parametrize("suffix", [".csv", ".ndjson"])
def test_an_event_table_with_text_columns_reads_back_as_the_same_trace(tmp_path, capsys,
                                                                       suffix):
    events = tmp_path / f"events{suffix}"
    assert main(["events", str(TRACE), "-o", str(events), "-q"]) == 0
    assert "irp_hex" in READERS[suffix](events).columns
    capsys.readouterr()
    docs = []
    for given in (TRACE, events):
        assert main(["analyze", str(given), "--json", "-q"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[1]["actual"] == docs[0]["actual"] and docs[1]["irps"] == docs[0]["irps"]
    again = tmp_path / f"again{suffix}"
    assert main(["events", str(events), "-o", str(again), "-q"]) == 0
    assert READERS[suffix](again).columns == READERS[suffix](events).columns
