"""WPP messages in an .etl (MESSAGE_TRACE_HEADER records): formatted through the TMF files of
`--tmf DIR` (fpreplay.parsers.wpp), then KMDF framework messages become event kinds through the
shared catalogue (fpreplay.parsers.kmdf_messages), exactly as the IFR text reader does.

The record's provider is the message GUID and its event_id the message number (etw-formats.md
1.8). Messages no TMF describes are counted and named in one warning; formatted messages that are
not framework messages are `other` rows named "WPP/<function>".
"""

from __future__ import annotations

from collections import Counter


def _catalog(ctx):
    if "wpp_catalog" not in ctx.state:
        if not ctx.tmf_dirs:
            ctx.state["wpp_catalog"] = None
        else:
            from fpreplay.parsers.wpp import load_tmf_dir_once

            ctx.state["wpp_catalog"] = load_tmf_dir_once(ctx.tmf_dirs)   # read_inputs loaded it
    return ctx.state["wpp_catalog"]


def _unformatted(record, ctx) -> list[dict]:
    missing: Counter = ctx.state.setdefault("wpp_missing", Counter())
    missing[str(record.provider)] += 1
    ctx.diagnostics.count("wpp_unformatted")
    if len(missing) == 1 and missing[str(record.provider)] == 1:
        hint = "no --tmf given" if not ctx.tmf_dirs else "no TMF in --tmf describes them"
        ctx.diagnostics.warn(f"{ctx.source}: WPP messages could not be formatted ({hint}; first "
                             f"message GUID {record.provider}, number {record.event_id}); they "
                             "are counted, not decoded")
    return []


def _stream(record, ctx):
    """The framework-message context for this record's thread.

    The walker hands records over in file order, and per-CPU buffers interleave threads out of
    time order; but a dispatch line and the failure line that follows it come from the same
    thread. So the "last dispatch" context is kept per thread, while what belongs to the driver as
    a whole is shared by all threads' streams (KmdfMessageStream.thread_stream)."""
    streams = ctx.state.get("kmdf_streams")
    if streams is None:
        streams = ctx.state["kmdf_streams"] = {}
    key = record.tid if record.tid is not None else ("cpu", record.cpu)
    stream = streams.get(key)
    if stream is None:
        if streams:
            stream = next(iter(streams.values())).thread_stream()
        else:
            from fpreplay.parsers.kmdf_messages import KmdfMessageStream

            stream = KmdfMessageStream()
        streams[key] = stream
    return stream


def decode(record, ctx) -> list[dict]:
    catalog = _catalog(ctx)
    if catalog is None or record.provider is None:
        return _unformatted(record, ctx)
    msg = catalog.format(record.provider, record.event_id or 0, record.payload,
                         record.pointer_size)
    if msg is None:
        return _unformatted(record, ctx)
    if not msg.complete:
        ctx.diagnostics.count("wpp_truncated")
        ctx.diagnostics.warn_repeated(
            f"{ctx.source}: short WPP", f"byte {record.file_offset}",
            f"{ctx.source}: WPP message(s) shorter than their TMF arguments (first at byte "
            f"{record.file_offset}); formatted what was there")
    # implied rows (queue_drain, ...) first; the time because buffers come out of time order
    rows = _stream(record, ctx).rows(msg.text, record.ts_raw)
    if rows is None:
        name = msg.function or f"{record.provider}/{record.event_id}"
        return [{"kind": "other", "event_name": f"WPP/{name}"}]
    return rows
