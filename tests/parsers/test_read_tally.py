"""ReadTally: what the progress bar shows is what reading got through (bytes of the input files,
event rows decoded, records), counted by the readers as they go."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import real_trace
from fpreplay.parsers import InputStream, ReadOptions, ReadTally, read_inputs

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "traces" / "samples"


def _tally() -> tuple[ReadTally, list[tuple[int, int]]]:
    seen: list[tuple[int, int]] = []
    return ReadTally(listener=lambda t: seen.append((t.bytes_read, t.events))), seen


@pytest.mark.parametrize("names", [["a-paging-storm/trace.etl"],
                                   ["c-purge-during-incident/ifr.txt"],
                                   ["c-purge-during-incident/trace.etl",
                                    "c-purge-during-incident/ifr.txt"]])
def test_tally_counts_every_byte_row_and_record_read(names):
    paths = [SAMPLES / n for n in names]
    tally, seen = _tally()
    read = read_inputs(paths, ReadOptions(tally=tally))
    size = sum(p.stat().st_size for p in paths)
    assert tally.bytes_total == tally.bytes_read == size
    assert tally.records == read.records > 0
    assert tally.inputs_done == len(paths)
    if len(paths) == 1:    # several inputs: a later input's repeats of an earlier one dropped
        assert tally.events == read.event_rows > 0
    assert seen == sorted(seen) and len(seen) >= 3


def test_tally_of_a_streamed_read_counts_as_the_batches_pass():
    """The streamed read (analyze, compare...): rows are counted batch by batch, while the
    bytes move on, not all at the end."""
    path = real_trace("etl/net.4.5.2.x64.etl.zip")
    tally, seen = _tally()
    stream = InputStream([path], ReadOptions(tally=tally, batch_rows=200))
    at_batches = [tally.bytes_read for _ in stream]
    read = stream.result([])
    assert len(at_batches) > 3 and at_batches[0] < path.stat().st_size / 2
    assert tally.bytes_read == path.stat().st_size and tally.events == read.event_rows
    assert tally.records == read.records
    assert len({b for b, _ in seen}) > 3


def test_tally_keeps_the_readers_own_progress_callback():
    path = SAMPLES / "a-paging-storm" / "trace.etl"
    calls: list[int] = []
    tally = ReadTally()
    read_inputs([path], ReadOptions(progress=calls.append, tally=tally))
    assert calls and calls[-1] <= path.stat().st_size == tally.bytes_read
