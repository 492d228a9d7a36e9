"""What an input is before any reader sees it: standard input spooled to a file, and the same
trace given twice told apart from two traces.

`-` (or any input that is not a regular file: /dev/stdin, a pipe, `<(zcat t.etl.gz)`) is copied
to a temporary file first, because every reader takes a path it may seek in (an .etl's circular
buffers, a zip's directory at its end, the sniffer's look at the first bytes then the reader's
read from the start). The user's name for it ("-") replaces the temporary path in the events'
`source` column, in errors and in warnings.

Duplicates: an input whose size and first and last MiB equal an earlier input's is that input
again (`analyze T T`, or T and a copy of T) and is not read a second time. Inputs whose time
ranges overlap may still hold the same events (a trace and a cut or relogged copy of it): events
identical in every column but `source` to an earlier input's are dropped from the later one. Both
cases are one warning naming both inputs: read twice, every IRP would be dispatched twice and
half of them would look never completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError

STDIN = "-"
_FINGERPRINT_BYTES = 1 << 20


def is_stream(path: Path | str) -> bool:
    """`-`, or a path that exists and is neither a regular file nor a directory (a pipe, a
    character device such as /dev/stdin, a FIFO)."""
    if str(path) == STDIN:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def local_file(path: Path | str) -> Iterator[Path]:
    """The input as a regular file a reader may seek in: the file itself, or a stream spooled to
    a temporary file that is removed afterwards."""
    if not is_stream(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="fpreplay-stdin-") as tmp:
        spooled = Path(tmp) / "input"
        try:
            if str(path) == STDIN:
                with open(spooled, "wb") as out:
                    shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
            else:
                with open(path, "rb") as src, open(spooled, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except OSError as e:
            raise InputError(path, f"cannot read: {e.strerror or e}") from None
        yield spooled


def renamed(batch: pl.DataFrame, real: Path, name: str) -> pl.DataFrame:
    """A spooled input's events name the user's input (`-`), not the temporary file."""
    if str(real) == name or "source" not in batch.columns:
        return batch
    return batch.with_columns(pl.col("source").str.replace_all(str(real), name, literal=True))


@contextlib.contextmanager
def named_as(real: Path, name: str, diagnostics: Diagnostics, first_warning: int):
    """Errors and warnings raised while reading `real` name `name` instead (a spooled stdin)."""
    try:
        yield
    except InputError as e:
        if str(real) != name and e.path == str(real):
            e.path = name
        raise
    finally:
        if str(real) != name:
            w = diagnostics.warnings
            w[first_warning:] = [m.replace(str(real), name) for m in w[first_warning:]]


def fingerprint(path: Path) -> tuple[int, str]:
    """Size and a hash of the first and last MiB: equal for the same trace given twice or copied,
    different for two captures (their headers hold their start times)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            f.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
            h.update(f.read(_FINGERPRINT_BYTES))
    return size, h.hexdigest()


def drop_repeated_events(tables: list[tuple[str, pl.DataFrame]],
                         diagnostics: Diagnostics) -> list[pl.DataFrame]:
    """Per input (in the order given), its events without those identical (every column but
    `source`) to an earlier input's whose time range overlaps; one warning per pair."""
    kept: list[tuple[str, pl.DataFrame, int | None, int | None]] = []
    for name, events in tables:
        lo, hi = (events["ts_ns"].min(), events["ts_ns"].max()) if events.height else (None, None)
        for earlier, earlier_events, elo, ehi in kept:
            if lo is None or elo is None or hi < elo or ehi < lo:
                continue
            before = events.height
            events = _without_events_of(events, earlier_events)
            if events.height < before:
                diagnostics.warn(
                    f"{name} and {earlier} overlap in time and share {before - events.height:,} "
                    f"identical events: {name}'s copies are dropped (the same trace read twice "
                    "would double every IRP)")
        kept.append((name, events, lo, hi))
    return [events for _, events, _, _ in kept]


def _without_events_of(events: pl.DataFrame, earlier: pl.DataFrame) -> pl.DataFrame:
    """`events` minus the rows equal to a row of `earlier` in every shared column but source;
    matched on the timestamp first, so two traces with no common instant cost one join."""
    common = [c for c in events.columns if c in earlier.columns and c != "source"]
    if "ts_ns" not in common:
        return events
    same_instant = earlier.select("ts_ns").join(events.select("ts_ns"), on="ts_ns", how="semi")
    if not same_instant.height:
        return events
    candidates = earlier.join(same_instant.unique(), on="ts_ns", how="semi").select(common)
    return events.join(candidates.unique(), on=common, how="anti", nulls_equal=True,
                       maintain_order="left")


def same_trace_warning(name: str, earlier: str) -> str:
    if name == earlier:
        return f"{name} is given twice: read once"
    return f"{name} is the same trace as {earlier} (same size and content): read once"
