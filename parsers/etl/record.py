"""One decoded ETW record header plus its payload: what the container walker hands to decoders.

The walker (reader.py) builds an EtlRecord only for records that a decoder asked for (or for all of
them with --all), so that the hot path stays a walk over raw bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(slots=True)
class EtlRecord:
    header_kind: str          # system | compact | perfinfo | event_trace | instance | event_header | wpp
    header_type: int          # byte @+2 of the marker (0x01..0x15); 0x90-class for WPP
    pointer_size: int         # 4 or 8, per event (etw-formats.md fact 6)
    ts_raw: int               # raw timestamp in the session clock
    ts_ns: int | None         # absolute UTC epoch ns (filled once the clock is known)
    cpu: int
    pid: int | None           # None for PERFINFO headers
    tid: int | None
    provider: uuid.UUID | None  # kernel: group GUID; EVENT_HEADER: ProviderId; classic: class GUID;
                                # WPP: message GUID
    group: int | None         # kernel HookId >> 8
    opcode: int               # kernel HookId & 0xFF / classic Type / descriptor Opcode
    event_id: int | None      # EVENT_HEADER descriptor Id / WPP MessageNumber
    version: int
    level: int | None
    task: int | None
    keyword: int | None
    flags: int                # EVENT_HEADER Flags / WPP OptionFlags / 0
    ext: list[tuple[int, bytes]] | None   # EVENT_HEADER extended data items (ExtType, data)
    payload: bytes
    file_offset: int          # byte offset of this record in the (decompressed) file, for messages
