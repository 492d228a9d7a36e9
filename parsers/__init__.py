"""Readers: every captured input becomes rows of the event table (contract section 3).

    read_inputs(paths, ReadOptions()) -> TraceRead

Inputs are recognised by content (the extension is only a hint) in `formats.sniff`; each format
has a reader `read(path, options, diagnostics) -> Iterator[pl.DataFrame]` yielding batches that
already conform to `fpreplay.schema.EVENT_COLUMNS` (plus ALL_RECORD_COLUMNS with --all).
Several inputs share one timeline by absolute time (ts_ns, UTC epoch nanoseconds).

Parsers import nothing from the engine.
"""

from fpreplay.parsers.api import (
    InputStream, ReadOptions, ReadTally, TraceRead, iter_input_batches, read_inputs,
)

__all__ = ["InputStream", "ReadOptions", "ReadTally", "TraceRead", "iter_input_batches",
           "read_inputs"]
