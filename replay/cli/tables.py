"""An `-o` table written as its rows come (compare's per-IRP table, analyze's lifecycles), so a
command never holds it whole: into a temporary file beside the output, renamed to it when
complete (as write_output: a reader never sees half of it, an existing file stays as it was).

CSV and NDJSON are appended block by block, each block with its text columns (text_columns);
Parquet blocks go to a scratch folder as they come and are streamed into one file at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import refuse_overwriting_inputs

FORMATS = (".parquet", ".csv", ".ndjson", ".jsonl")


class TableWriter:
    """write(block) in order, then finish() (or discard() on an error); `rows` so far."""

    def __init__(self, path: Path, inputs=()):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in FORMATS:
            raise FpreplayError(f"{self.path}: unknown output format {self.suffix!r} "
                                "(use .parquet, .csv, .ndjson or .jsonl)")
        refuse_overwriting_inputs(self.path, inputs)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self.rows = 0
        self.blocks = 0
        self._parts: Path | None = None
        self._file = None
        try:
            if self.suffix == ".parquet":
                self._parts = Path(tempfile.mkdtemp(prefix="fpreplay-out-"))
                self.tmp.touch()       # an unwritable folder is said before any work
                self.tmp.unlink()
            else:
                self._file = open(self.tmp, "wb")
        except OSError as e:
            raise FpreplayError(f"{self.path}: cannot write: {e.strerror or e}") from None

    def write(self, block) -> None:
        import polars as pl

        from fpreplay.replay.render.text_columns import with_text_columns

        if self.suffix in (".csv", ".ndjson", ".jsonl"):   # text beside the numbers
            block = with_text_columns(block)
        if self.suffix == ".csv":   # CSV has no lists: devices "a;b", as a cell
            block = block.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(";")
                                       for c, t in block.schema.items()
                                       if isinstance(t, pl.List))
            block.write_csv(self._file, include_header=self.blocks == 0)
        elif self.suffix == ".parquet":
            block.write_parquet(self._parts / f"{self.blocks:08d}.parquet")
        else:
            block.write_ndjson(self._file)
        self.rows += block.height
        self.blocks += 1

    def finish(self) -> None:
        import polars as pl

        try:
            if self._file is not None:
                self._file.close()
            elif self.blocks:
                pl.scan_parquet(sorted(self._parts.glob("*.parquet"))).sink_parquet(self.tmp)
            os.replace(self.tmp, self.path)
        except OSError as e:
            raise FpreplayError(f"{self.path}: cannot write: {e.strerror or e}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self.tmp.exists():
            self.tmp.unlink()
        if self._parts is not None:
            shutil.rmtree(self._parts, ignore_errors=True)
            self._parts = None
