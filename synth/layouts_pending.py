"""Layouts the synthesizer writes that have no construct declaration in their owner's module yet.

The TraceLogging metadata blobs (EVENT_SCHEMA_TL and PROV_TRAITS extended items) belong in
`parsers/etl/decoders/tracelogging.py`, which reads them by hand; the lead can move these there so
that one declaration serves reading and writing (etw-formats.md 1.8).
"""

from __future__ import annotations

from construct import CString, Int8ul, Int16ul, Struct


# --- TraceLogging self-describing metadata (EVENT_SCHEMA_TL and PROV_TRAITS extended items) -----
# Event metadata: u16 total size, tag byte(s) (bit 7 = another tag byte follows), UTF-8 event
# name, then per field: UTF-8 name, in-type byte (bit 7 = an out-type byte follows), out-type.
TL_PROVIDER_TRAITS = Struct(
    "Size" / Int16ul,               # whole blob including this field
    "ProviderName" / CString("utf8"),
)

TL_FIELD = Struct(
    "Name" / CString("utf8"),
    "InType" / Int8ul,
)

TL_EVENT_HEAD = Struct(
    "Size" / Int16ul,               # whole blob including this field
    "Tags" / Int8ul,                # 0: no event tags (no continuation byte)
    "Name" / CString("utf8"),
)

# TraceLogging in-types used here (TraceLoggingProvider.h TlgIn*).
TLG_IN_ANSISTRING = 2
TLG_IN_UINT8 = 4
TLG_IN_UINT16 = 6
TLG_IN_UINT32 = 8
TLG_IN_UINT64 = 10
TLG_IN_HEXINT32 = 20
TLG_IN_HEXINT64 = 21
TLG_IN_CHAIN = 0x80   # an out-type byte follows
TLG_OUT_HEX = 4
TLG_OUT_NTSTATUS = 14
TLG_OUT_UTF8 = 35
