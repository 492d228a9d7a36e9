"""The IRP spool: the lifecycle table (fpreplay.irps/1, as build_lifecycles returns it) kept on
disk as it is built, read back in arrival order, a chunk at a time, as many times as asked.

    read, spool = read_lifecycles_spooled(stream)     # stream: fpreplay.parsers.InputStream
    with spool:                                       # the context removes its files
        for chunk in spool.chunks(columns=["irp", "arrive_ns"], rows=65_536): ...
        spool.height                                  # rows, as build_lifecycles' table
        spool.collect()                               # the whole table (small traces, tests)

Rows are appended in their final order (non-decreasing arrive_ns, ties in the order
build_lifecycles gives) as `pieces`: in memory until SPOOL_MEMORY_ROWS rows are waiting, then
written as one Parquet file into a temporary directory (tempfile, so TMPDIR decides where),
which close() removes. A small trace never touches the disk.

A piece holds the rows as the stream appended them; when the stream finishes, rewrite() turns
each piece into the table's rows once (what needs the whole trace, say the device names learned
from every IRP, is applied then: see finish.py), so every later read is a plain read of the
columns asked for. Reading before finish() is an error.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

# Rows kept in memory before they go to a Parquet file (a small trace never writes one).
SPOOL_MEMORY_ROWS = 131_072
CHUNK_ROWS = 65_536


class IrpSpool:
    """Lifecycle rows in arrival order, on disk past SPOOL_MEMORY_ROWS (see the module)."""

    def __init__(self) -> None:
        self._files: list[Path] = []
        self._waiting: list[pl.DataFrame] = []
        self._waiting_rows = 0
        self._dir: Path | None = None
        self._finished = False
        self._empty_table = pl.DataFrame()
        self.height = 0
        self.stored_rows = 0
        self.aliases: dict[str, str] = {}   # each device alias -> its device (devices.alias_map)

    # writing
    def append(self, rows: pl.DataFrame) -> None:
        """Rows that follow every row appended so far (the caller keeps the order)."""
        if rows.height == 0:
            return
        self._waiting.append(rows)
        self._waiting_rows += rows.height
        self.stored_rows += rows.height
        if self._waiting_rows >= SPOOL_MEMORY_ROWS:
            self._write()

    def scratch_dir(self) -> Path:
        """The spool's temporary directory (made on first use): its files and the stream's."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="fpreplay-irps-"))
        return self._dir

    def _write(self) -> None:
        path = self.scratch_dir() / f"irps-{len(self._files):06d}.parquet"
        pl.concat(self._waiting, how="vertical_relaxed").write_parquet(
            path, compression="lz4", statistics=False)
        self._files.append(path)
        self._waiting, self._waiting_rows = [], 0

    def rewrite(self, rows_of: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        """Each stored piece, in order, replaced by rows_of(piece) (the rows appended so far
        are stored first)."""
        if self._files and self._waiting:
            self._write()
        for path in self._files:
            rows_of(pl.read_parquet(path)).write_parquet(path, compression="lz4")
        self._waiting = [rows_of(piece) for piece in self._waiting]

    def finish(self, height: int, aliases: dict[str, str], empty: pl.DataFrame) -> None:
        """No more rows: `height` rows in all, `aliases` what devices.alias_map says of the
        table, `empty` the table with no row (its columns)."""
        self._finished = True
        self.height = height
        self.aliases = aliases
        self._empty_table = empty

    # reading
    @property
    def columns(self) -> list[str]:
        """The table's columns (known once finished)."""
        return list(self._empty_table.columns)

    def chunks(self, columns: list[str] | None = None, rows: int = CHUNK_ROWS
               ) -> Iterator[pl.DataFrame]:
        """The table in arrival order, chunks of at most `rows` rows (none empty), only
        `columns` when given."""
        if not self._finished:
            raise RuntimeError("the IRP spool is read before the lifecycles are finished")
        pieces = [*self._files, *self._waiting]
        for piece in pieces:
            if isinstance(piece, Path):
                piece = pl.read_parquet(piece, columns=columns)
            elif columns is not None:
                piece = piece.select(columns)
            for start in range(0, piece.height, rows):
                yield piece.slice(start, rows)

    def collect(self, columns: list[str] | None = None) -> pl.DataFrame:
        """The whole table (small traces, tests)."""
        frames = list(self.chunks(columns, rows=1 << 62))
        if frames:
            return pl.concat(frames, how="vertical_relaxed", rechunk=False)
        return self._empty_table if columns is None else self._empty_table.select(columns)

    def close(self) -> None:
        """Remove the spool's files (it reads nothing after)."""
        self._waiting = []
        self._files = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> IrpSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
