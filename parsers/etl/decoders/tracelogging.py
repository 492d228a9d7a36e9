"""TraceLogging / EventSource self-describing events, decoded from their own metadata.

A self-describing event is an EVENT_HEADER event with an EVENT_SCHEMA_TL extended item (type 11)
holding its metadata, and usually a PROV_TRAITS item (type 12) holding the provider's name
(etw-formats.md 1.8). Metadata layout (public TraceLoggingProvider.h description):

    u16 size | tag bytes (each with 0x80 = another follows) | event name, UTF-8, NUL
    per field:  name, UTF-8, NUL | u8 InType | [u8 OutType if InType & 0x80]
                | [tag bytes if OutType & 0x80] | [u16 count if constant-count array]
                | [u16 size + type info if custom]
    InType low 5 bits = the type; 0x20 = constant-count array, 0x40 = variable-count array (u16
    count in the payload), 0x60 = custom. A STRUCT's OutType holds its member count (low 7 bits)
    and its members are the fields that follow.

Events whose name is an instrumentation name of contract section 3 (IrpDispatch, IrpComplete,
...) become that kind whatever the provider, with the fields Irp, Request, Queue, Device, Major,
Minor, IrpFlags, Status, Bytes and Offset (names case-insensitive) in their columns; all other
events are `other`, named "<provider name>/<event name>". `--provider NAME` (ctx.providers) names
providers whose every event is decoded field by field; a provider is recognised by the GUID that
EventSource/TraceLogging derive from its name (`provider_guid`), by its traits name, or by a GUID
given literally.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass, field

from construct import CString, Int8ul, Int16ul, Struct

from fpreplay.parsers.etl.decoders.common import irp_flags

EXT_EVENT_SCHEMA_TL = 11
EXT_PROV_TRAITS = 12

# The fixed namespace EventSource/TraceLogging hash a provider name in (public, EventSource.cs
# documentation of "GetGuid": SHA-1 over namespace + upper-cased UTF-16BE name, version 5 GUID).
_NAME_NAMESPACE = bytes([0x48, 0x2C, 0x2D, 0xB2, 0xC3, 0x90, 0x47, 0xC8,
                         0x87, 0xF8, 0x1A, 0x15, 0xBF, 0xC1, 0x30, 0xFB])


def provider_guid(name: str) -> uuid.UUID:
    """The GUID a TraceLogging/EventSource provider of this name gets (its name-hashed GUID)."""
    digest = bytearray(hashlib.sha1(_NAME_NAMESPACE + name.upper().encode("utf-16-be")).digest())
    digest[7] = (digest[7] & 0x0F) | 0x50
    return uuid.UUID(bytes_le=bytes(digest[:16]))


# --- the instrumentation vocabulary (contract section 3) --------------------------------------
INSTRUMENTATION_KINDS = {
    "irpdispatch": "irp_dispatch",
    "irpcomplete": "irp_complete",
    "requestallocfailed": "request_alloc_failed",
    "requestresourcesfailed": "request_resources_failed",
    "reservedrequestused": "reserved_request_used",
    "forwardprogressrefused": "fp_policy_refused",
    "queuestart": "queue_start",
    "queuestop": "queue_stop",
    "queuestoppurge": "queue_stop_purge",
    "queuepurge": "queue_purge",
    "queuedrain": "queue_drain",
    "memorypressure": "memory_pressure",
}
# field name (lower case) -> event-table column
INSTRUMENTATION_FIELDS = {"irp": "irp", "request": "request", "queue": "queue",
                          "device": "device", "major": "major", "minor": "minor",
                          "irpflags": "irp_flags", "status": "status", "bytes": "bytes",
                          "offset": "offset"}
_TEXT_COLUMNS = {"queue", "device"}

# --- in-types ---------------------------------------------------------------------------------
IN_NULL, IN_UNICODESTRING, IN_ANSISTRING = 0, 1, 2
IN_INT8, IN_UINT8, IN_INT16, IN_UINT16, IN_INT32, IN_UINT32, IN_INT64, IN_UINT64 = range(3, 11)
IN_HEXINT32, IN_HEXINT64 = 20, 21
IN_BINARY, IN_GUID, IN_POINTER, IN_FILETIME, IN_SYSTEMTIME, IN_SID = 14, 15, 16, 17, 18, 19
IN_COUNTEDSTRING, IN_COUNTEDANSISTRING, IN_STRUCT, IN_COUNTEDBINARY = 22, 23, 24, 25
_FIXED = {3: struct.Struct("<b"), 4: struct.Struct("<B"), 5: struct.Struct("<h"),
          6: struct.Struct("<H"), 7: struct.Struct("<i"), 8: struct.Struct("<I"),
          9: struct.Struct("<q"), 10: struct.Struct("<Q"), 11: struct.Struct("<f"),
          12: struct.Struct("<d"), 13: struct.Struct("<i"), 17: struct.Struct("<Q"),
          20: struct.Struct("<I"), 21: struct.Struct("<Q")}
IN_BOOL32 = 13
# out-types (display hints) the readers or the synthesizer use
OUT_BOOLEAN, OUT_HEX, OUT_NTSTATUS, OUT_UTF8 = 3, 4, 14, 35
COUNT_CONST, COUNT_VAR, COUNT_CUSTOM = 0x20, 0x40, 0x60
_U16 = struct.Struct("<H")


class TlFormatError(ValueError):
    """Metadata or payload that does not follow the TraceLogging encoding."""


@dataclass(slots=True)
class TlField:
    name: str
    in_type: int              # low 5 bits
    out_type: int = 0
    count: int = 0            # 0 scalar, COUNT_CONST / COUNT_VAR / COUNT_CUSTOM
    const_count: int = 0
    members: list = field(default_factory=list)   # STRUCT members


@dataclass(slots=True)
class TlEvent:
    name: str
    fields: list


def _cstr(data: bytes, off: int) -> tuple[str, int]:
    end = data.find(b"\0", off)
    if end < 0:
        raise TlFormatError("unterminated name in metadata")
    return data[off:end].decode("utf-8", errors="replace"), end + 1


def _skip_tags(data: bytes, off: int) -> int:
    while True:
        if off >= len(data):
            raise TlFormatError("metadata ends inside tag bytes")
        b = data[off]
        off += 1
        if not b & 0x80:
            return off


def _parse_fields(data: bytes, off: int, end: int, limit: int | None) -> tuple[list, int]:
    fields = []
    while off < end and (limit is None or len(fields) < limit):
        name, off = _cstr(data, off)
        if off >= end:
            raise TlFormatError(f"field {name!r} has no type")
        raw_in = data[off]
        off += 1
        f = TlField(name=name, in_type=raw_in & 0x1F, count=raw_in & 0x60)
        if raw_in & 0x80:
            if off >= end:
                raise TlFormatError(f"field {name!r} lacks its out-type")
            raw_out = data[off]
            off += 1
            f.out_type = raw_out & 0x7F
            if raw_out & 0x80:
                off = _skip_tags(data, off)
        if f.count == COUNT_CONST:
            f.const_count = _U16.unpack_from(data, off)[0]
            off += 2
        elif f.count == COUNT_CUSTOM:
            size = _U16.unpack_from(data, off)[0]
            off += 2 + size
        if f.in_type == IN_STRUCT:
            if f.out_type == 0:
                raise TlFormatError(f"struct {name!r} declares no members")
            f.members, off = _parse_fields(data, off, end, f.out_type)
        fields.append(f)
    return fields, off


def parse_metadata(meta: bytes) -> TlEvent:
    """An EVENT_SCHEMA_TL item's data -> event name and field tree."""
    if len(meta) < 4:
        raise TlFormatError("metadata shorter than its header")
    size = _U16.unpack_from(meta, 0)[0]
    end = min(size, len(meta)) if size >= 3 else len(meta)
    off = _skip_tags(meta, 2)
    name, off = _cstr(meta, off)
    fields, _ = _parse_fields(meta, off, end, None)
    return TlEvent(name=name, fields=fields)


def _sid(data: bytes, off: int) -> tuple[str, int]:
    if off + 8 > len(data):
        raise TlFormatError("SID runs past the payload")
    rev, n = data[off], data[off + 1]
    auth = int.from_bytes(data[off + 2: off + 8], "big")
    end = off + 8 + 4 * n
    if end > len(data):
        raise TlFormatError("SID runs past the payload")
    subs = struct.unpack_from(f"<{n}I", data, off + 8)
    return "S-" + "-".join(str(x) for x in (rev, auth, *subs)), end


def _scalar(f: TlField, data: bytes, off: int, psize: int):
    t = f.in_type
    st = _FIXED.get(t)
    if st is not None:
        if off + st.size > len(data):
            raise TlFormatError(f"field {f.name!r} runs past the payload")
        v = st.unpack_from(data, off)[0]
        if t == IN_BOOL32 or f.out_type == OUT_BOOLEAN:
            v = bool(v)
        return v, off + st.size
    if t == IN_UNICODESTRING:
        end = off
        while end + 1 < len(data) and (data[end] or data[end + 1]):
            end += 2
        if end + 1 >= len(data):
            raise TlFormatError(f"string {f.name!r} is not terminated")
        return data[off:end].decode("utf-16-le", errors="replace"), end + 2
    if t == IN_ANSISTRING:
        end = data.find(b"\0", off)
        if end < 0:
            raise TlFormatError(f"string {f.name!r} is not terminated")
        return data[off:end].decode("utf-8", errors="replace"), end + 1
    if t in (IN_BINARY, IN_COUNTEDBINARY, IN_COUNTEDSTRING, IN_COUNTEDANSISTRING):
        if off + 2 > len(data):
            raise TlFormatError(f"field {f.name!r} runs past the payload")
        n = _U16.unpack_from(data, off)[0]
        raw = data[off + 2: off + 2 + n]
        if len(raw) < n:
            raise TlFormatError(f"field {f.name!r} runs past the payload")
        if t == IN_COUNTEDSTRING:
            return raw.decode("utf-16-le", errors="replace"), off + 2 + n
        if t == IN_COUNTEDANSISTRING:
            return raw.decode("utf-8", errors="replace"), off + 2 + n
        return bytes(raw), off + 2 + n
    if t == IN_GUID:
        if off + 16 > len(data):
            raise TlFormatError(f"GUID {f.name!r} runs past the payload")
        return str(uuid.UUID(bytes_le=bytes(data[off:off + 16]))), off + 16
    if t == IN_POINTER:
        if off + psize > len(data):
            raise TlFormatError(f"pointer {f.name!r} runs past the payload")
        return int.from_bytes(data[off:off + psize], "little"), off + psize
    if t == IN_SYSTEMTIME:
        if off + 16 > len(data):
            raise TlFormatError(f"SYSTEMTIME {f.name!r} runs past the payload")
        y, mo, _dow, d, h, mi, s, ms = struct.unpack_from("<8H", data, off)
        return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{ms:03d}", off + 16
    if t == IN_SID:
        return _sid(data, off)
    if t == IN_STRUCT:
        out = {}
        for m in f.members:
            out[m.name], off = _value(m, data, off, psize)
        return out, off
    if t == IN_NULL:
        return None, off
    raise TlFormatError(f"field {f.name!r} has unknown in-type {t}")


def _value(f: TlField, data: bytes, off: int, psize: int):
    if f.count == 0:
        return _scalar(f, data, off, psize)
    if f.count == COUNT_CUSTOM:
        if off + 2 > len(data):
            raise TlFormatError(f"custom field {f.name!r} runs past the payload")
        n = _U16.unpack_from(data, off)[0]
        return bytes(data[off + 2: off + 2 + n]), off + 2 + n
    if f.count == COUNT_CONST:
        n = f.const_count
    else:
        if off + 2 > len(data):
            raise TlFormatError(f"array {f.name!r} runs past the payload")
        n = _U16.unpack_from(data, off)[0]
        off += 2
    items = []
    for _ in range(n):
        v, off = _scalar(f, data, off, psize)
        items.append(v)
    return items, off


def decode_payload(event: TlEvent, payload: bytes, pointer_size: int) -> tuple[dict, str | None]:
    """Field values in metadata order; on damage, what was read plus the reason."""
    values: dict = {}
    off = 0
    for f in event.fields:
        try:
            values[f.name], off = _value(f, payload, off, pointer_size)
        except (TlFormatError, struct.error, RecursionError) as e:
            return values, str(e)
    return values, None


# --- the writing side (the synthesizer and the tests build events with these) ----------------
TL_PROVIDER_TRAITS = Struct("Size" / Int16ul, "ProviderName" / CString("utf8"))
TL_EVENT_HEAD = Struct("Size" / Int16ul, "Tags" / Int8ul, "Name" / CString("utf8"))


def provider_traits(name: str) -> bytes:
    """A PROV_TRAITS item's data: the provider's name, no traits."""
    return TL_PROVIDER_TRAITS.build(dict(Size=2 + len(name.encode("utf-8")) + 1, ProviderName=name))


def _field_metadata(f: TlField) -> bytes:
    out = f.name.encode("utf-8") + b"\0"
    out_type = len(f.members) if f.in_type == IN_STRUCT else f.out_type
    out += bytes([f.in_type | f.count | (0x80 if out_type else 0)])
    if out_type:
        out += bytes([out_type])
    if f.count == COUNT_CONST:
        out += _U16.pack(f.const_count)
    for m in f.members:
        out += _field_metadata(m)
    return out


def build_metadata(event: TlEvent) -> bytes:
    """An EVENT_SCHEMA_TL item's data for this event (the inverse of parse_metadata)."""
    body = TL_EVENT_HEAD.build(dict(Size=0, Tags=0, Name=event.name))[2:]
    body += b"".join(_field_metadata(f) for f in event.fields)
    return _U16.pack(len(body) + 2) + body


def _encode_scalar(f: TlField, v, psize: int) -> bytes:
    t = f.in_type
    st = _FIXED.get(t)
    if st is not None:
        return st.pack(int(v) if isinstance(v, bool) else v)
    if t == IN_UNICODESTRING:
        return v.encode("utf-16-le") + b"\0\0"
    if t == IN_ANSISTRING:
        return v.encode("utf-8") + b"\0"
    if t in (IN_BINARY, IN_COUNTEDBINARY):
        return _U16.pack(len(v)) + v
    if t == IN_COUNTEDSTRING:
        raw = v.encode("utf-16-le")
        return _U16.pack(len(raw)) + raw
    if t == IN_COUNTEDANSISTRING:
        raw = v.encode("utf-8")
        return _U16.pack(len(raw)) + raw
    if t == IN_GUID:
        return uuid.UUID(v).bytes_le
    if t == IN_POINTER:
        return v.to_bytes(psize, "little")
    if t == IN_SYSTEMTIME:
        d, tm = v.split("T")
        y, mo, dd = (int(x) for x in d.split("-"))
        hms, ms = tm.split(".")
        h, mi, sec = (int(x) for x in hms.split(":"))
        return struct.pack("<8H", y, mo, 0, dd, h, mi, sec, int(ms))
    if t == IN_SID:
        parts = v.split("-")
        rev, auth, subs = int(parts[1]), int(parts[2]), [int(x) for x in parts[3:]]
        return bytes([rev, len(subs)]) + auth.to_bytes(6, "big") + struct.pack(
            f"<{len(subs)}I", *subs)
    if t == IN_STRUCT:
        return b"".join(_encode_value(m, v[m.name], psize) for m in f.members)
    if t == IN_NULL:
        return b""
    raise TlFormatError(f"cannot encode in-type {t}")


def _encode_value(f: TlField, v, psize: int) -> bytes:
    if f.count == 0:
        return _encode_scalar(f, v, psize)
    items = b"".join(_encode_scalar(f, x, psize) for x in v)
    return items if f.count == COUNT_CONST else _U16.pack(len(v)) + items


def encode_payload(event: TlEvent, values: dict, pointer_size: int = 8) -> bytes:
    """The payload for these values (the inverse of decode_payload)."""
    return b"".join(_encode_value(f, values[f.name], pointer_size) for f in event.fields)


# --- the decoder the walker calls -------------------------------------------------------------

def _as_int(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        s = value.strip()
        try:
            return int(s, 16) if s.lower().startswith("0x") else int(s)
        except ValueError:
            return None
    return None


def instrumentation_columns(values: dict) -> dict:
    """Map the contract's instrumentation fields (case-insensitive) onto event-table columns."""
    row = {}
    for key, value in values.items():
        col = INSTRUMENTATION_FIELDS.get(key.lower())
        if col is None or value is None:
            continue
        if col in _TEXT_COLUMNS:
            row[col] = value if isinstance(value, str) else (
                f"0x{value:x}" if isinstance(value, int) else str(value))
        else:
            v = _as_int(value)
            if v is None:
                continue
            if col in ("major", "minor"):
                v &= 0xFF
            elif col == "status":
                v &= 0xFFFFFFFF
            elif col == "irp_flags":
                v = irp_flags(v & 0xFFFFFFFF)
            row[col] = v
    return row


def _selected(ctx) -> set[str]:
    """GUID strings and lower-cased names of the --provider selections (cached per context)."""
    sel = ctx.state.get("tl_selected")
    if sel is None:
        sel = set()
        for name in ctx.providers:
            sel.add(name.lower())
            try:
                sel.add(str(uuid.UUID(name.strip("{}"))))
            except ValueError:
                sel.add(str(provider_guid(name)))
        ctx.state["tl_selected"] = sel
    return sel


def provider_name(traits: bytes | None, guid: str) -> str:
    """The name in the provider-traits item, else the provider GUID."""
    if traits and len(traits) > 2:
        end = traits.find(b"\0", 2)
        return traits[2: end if end >= 0 else len(traits)].decode("utf-8", errors="replace")
    return guid


def fields_wanted(ctx, kind: str | None, provider: str, guid: str) -> bool:
    """Whether an event's fields are decoded: an instrumentation name, or a --provider choice
    (by name or GUID)."""
    if kind is not None:
        return True
    if not ctx.providers:
        return False
    sel = _selected(ctx)
    return provider.lower() in sel or guid in sel


def decode(record, ctx) -> list[dict]:
    meta = traits = None
    for ext_type, data in record.ext or ():
        if ext_type == EXT_EVENT_SCHEMA_TL:
            meta = data
        elif ext_type == EXT_PROV_TRAITS:
            traits = data
    if meta is None:
        return []
    cache = ctx.state.setdefault("tl_metadata", {})
    event = cache.get(meta)
    if event is None:
        try:
            event = parse_metadata(bytes(meta))
        except (TlFormatError, struct.error, RecursionError) as e:
            ctx.diagnostics.count("tracelogging_bad_metadata")
            ctx.diagnostics.warn(f"{ctx.source}: TraceLogging event with unreadable metadata "
                                 f"skipped (byte {record.file_offset}: {e})")
            return []
        cache[meta] = event
    guid = str(record.provider)
    provider = provider_name(traits, guid)
    kind = INSTRUMENTATION_KINDS.get(event.name.lower())
    row = {"kind": kind or "other", "event_name": f"{provider}/{event.name}"}
    if not fields_wanted(ctx, kind, provider, guid):
        return [row]
    values, problem = decode_payload(event, record.payload, record.pointer_size)
    if problem:
        ctx.diagnostics.count("tracelogging_damaged_payload")
        ctx.diagnostics.warn(f"{ctx.source}: TraceLogging {provider}/{event.name} payload "
                             f"damaged at byte {record.file_offset} ({problem}); kept the fields "
                             "read before it")
    row.update(instrumentation_columns(values))
    return [row]
