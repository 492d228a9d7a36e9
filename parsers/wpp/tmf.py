"""TMF catalogues: load trace-message-format files and format WPP messages with them.

API (used by the .etl WPP decoder, the IFR/tracefmt readers and `--tmf DIR`):

    catalog = load_tmf_dir([Path("tmfdir"), Path("x.tmf")])     # dirs (*.tmf inside) or files
    msg = catalog.format(message_guid, message_number, args_bytes, pointer_size)
    # -> FormattedMessage | None (None: no TMF describes this GUID/number)
    msg.text        "Completing WDFREQUEST 0x00003A77F9C19F68 for IRP ... STATUS_SUCCESS"
    msg.function    "FxRequest::Complete"   (FUNC= of the #typev comment)
    msg.level       "TRACE_LEVEL_VERBOSE"   (LEVEL=)
    msg.flags       "TRACINGREQUEST"        (FLAGS=)
    msg.args        typed values in argument order (int, str, uuid.UUID, float)
    msg.complete    False when the payload was shorter than the arguments (the text then ends
                    with "<truncated>") or an argument type is unknown

`message_guid` is a uuid.UUID or its text; `args_bytes` is the packed argument area of a
MESSAGE_TRACE_HEADER event or an IFR record (etw-formats.md section 1.8).

TMF syntax accepted (as tracepdb writes it):

    // comment lines
    <message-guid> <friendly name> // SRC=<file> MJ= MN=
    #typev <name> <number> "%0<format, arguments %10!d! %11!s! ...>" // LEVEL=.. FLAGS=.. FUNC=..
    {
    <expression>, <ItemType> -- 10
    }
    #enumv <EnumName> <anything>
    {
    <Symbol> = <value>
    }

Arguments are numbered from 10; `%N!spec!` takes a printf spec (d i u x X o p c s S e f g with
flags, width, precision and the I64/l/h/w length prefixes). `%!FUNC!`, `%!LEVEL!`, `%!FLAGS!`,
`%!COMPNAME!` in a format string take the message's own attributes. ItemNTSTATUS prints
symbolically (%!STATUS!); `ItemEnum(Name)` and `ItemList{Byte,Short,Long}(Name)` print through
`#enumv Name`, `ItemList…(A,B,C)` (an inline list, as KMDF's %!IRPMJ! is declared) prints the
value-th name, and `ItemSet…(Name)` / `ItemSet…(A,B,C)` print the set bits as `A|B`. An argument
type fpreplay does not know stops formatting there (the text ends with `<unknown argument type
…>`, complete=False). A malformed TMF raises InputError naming the file and line.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fpreplay.errors import InputError
from fpreplay.parsers.wpp.symbols import format_irpmj, format_status

# Fixed-size item types -> (struct code, signed?) ; variable ones are handled in _take_arg.
_FIXED: dict[str, str] = {
    "ItemChar": "b", "ItemUChar": "B", "ItemShort": "h", "ItemUShort": "H", "ItemPort": ">H",
    "ItemLong": "i", "ItemULong": "I", "ItemLongHex": "I", "ItemULongX": "I", "ItemLongX": "I",
    "ItemNTSTATUS": "I", "ItemHRESULT": "I", "ItemWINERROR": "I", "ItemChar4": "4s",
    "ItemIPAddr": "4s", "ItemEnum": "I", "ItemListLong": "I", "ItemSetLong": "I",
    "ItemListByte": "B", "ItemListShort": "H", "ItemSetByte": "B", "ItemSetShort": "H",
    "ItemIRPMJ": "I", "ItemLongLong": "q", "ItemULongLong": "Q", "ItemLongLongX": "Q",
    "ItemLongLongXX": "Q", "ItemULongLongX": "Q", "ItemULongLongXX": "Q", "ItemDouble": "d",
    "ItemTimestamp": "Q", "ItemTimeDelta": "q", "ItemWaitTime": "q", "ItemGuid": "16s",
    "ItemIPV6Addr": "16s",
}
_POINTER_TYPES = {"ItemPtr", "ItemPtrHex", "ItemPtrX"}
_STRING_TYPES = {"ItemString", "ItemRString", "ItemCString", "ItemWString", "ItemPString",
                 "ItemPWString", "ItemSid"}


@dataclass
class TmfArgument:
    number: int
    item_type: str          # e.g. ItemLong
    enum: str | None        # ItemEnum(Name) -> Name
    names: tuple[str, ...] = ()   # ItemListByte(A,B,C) -> ("A", "B", "C")


@dataclass
class TmfMessage:
    guid: uuid.UUID
    number: int
    name: str
    fmt: str
    function: str | None
    level: str | None
    flags: str | None
    args: list[TmfArgument]
    source: str             # "file:line" of the #typev, for messages about it


@dataclass
class FormattedMessage:
    text: str
    function: str | None
    level: str | None
    flags: str | None
    args: list = field(default_factory=list)
    message_guid: uuid.UUID | None = None
    message_number: int | None = None
    component: str | None = None     # the GUID line's friendly name (tracefmt's %1)
    source_file: str | None = None   # SRC= of the GUID line
    complete: bool = True


class TmfCatalog:
    """(message GUID, message number) -> TmfMessage, plus the #enumv tables."""

    def __init__(self) -> None:
        self.messages: dict[tuple[uuid.UUID, int], TmfMessage] = {}
        self.enums: dict[str, dict[int, str]] = {}
        self.components: dict[uuid.UUID, tuple[str, str | None]] = {}

    def __len__(self) -> int:
        return len(self.messages)

    def lookup(self, message_guid, message_number: int) -> TmfMessage | None:
        return self.messages.get((_as_uuid(message_guid), int(message_number)))

    def format(self, message_guid, message_number: int, args_bytes: bytes,
               pointer_size: int = 8) -> FormattedMessage | None:
        guid = _as_uuid(message_guid)
        msg = self.messages.get((guid, int(message_number)))
        if msg is None:
            return None
        values: dict[int, object] = {}
        complete = True
        unknown = None
        pos = 0
        for arg in msg.args:
            try:
                value, pos = _take_arg(arg.item_type, args_bytes, pos, pointer_size)
            except (struct.error, IndexError):
                complete = False
                break
            except ValueError:
                complete = False
                unknown = arg.item_type
                break
            values[arg.number] = (arg, value)
        comp, src = self.components.get(guid, (None, None))
        text = self._render(msg, values, pointer_size, comp)
        if unknown is not None:
            text += f" <unknown argument type {unknown}>"
        elif not complete:
            text += " <truncated>"
        return FormattedMessage(text=text, function=msg.function, level=msg.level,
                                flags=msg.flags, args=[v for _, v in values.values()],
                                message_guid=guid, message_number=msg.number, component=comp,
                                source_file=src, complete=complete)

    # --- rendering -------------------------------------------------------------------------
    def _render(self, msg: TmfMessage, values: dict, pointer_size: int, comp: str | None) -> str:
        attrs = {"FUNC": msg.function or "", "LEVEL": msg.level or "", "FLAGS": msg.flags or "",
                 "COMPNAME": comp or ""}

        def sub(m: re.Match) -> str:
            if m.group(0) == "%%":
                return "%"
            if m.group("macro"):
                return attrs.get(m.group("macro"), m.group(0))
            number = int(m.group("num"))
            if number < 10:          # %0 marks where the prefix goes; %1..%9 are prefix items
                return ""
            if number not in values:
                return m.group(0) if not values or max(values) < number else "?"
            arg, value = values[number]
            return self._format_value(arg, value, m.group("spec") or "s", pointer_size)

        return _FORMAT_ITEM.sub(sub, msg.fmt)

    def _format_value(self, arg: TmfArgument, value, spec: str, pointer_size: int) -> str:
        t = arg.item_type
        if t == "ItemNTSTATUS":
            return format_status(value)
        if t == "ItemIRPMJ":
            return format_irpmj(value)
        if arg.names:
            if t.startswith("ItemSet"):
                return "|".join(n for i, n in enumerate(arg.names) if value >> i & 1) or str(value)
            return arg.names[value] if 0 <= value < len(arg.names) else str(value)
        if arg.enum is not None and (t == "ItemEnum" or t.startswith("ItemList")):
            table = self.enums.get(arg.enum, {})
            return table.get(value, str(value))
        if arg.enum is not None and t.startswith("ItemSet"):
            table = self.enums.get(arg.enum, {})
            names = [n for v, n in sorted(table.items()) if v and value & v == v]
            return "|".join(names) if names else str(value)
        if isinstance(value, uuid.UUID):
            return str(value)
        if t == "ItemIPAddr":
            return ".".join(str(b) for b in value)
        if t == "ItemIPV6Addr":
            return ":".join(value[i:i + 2].hex() for i in range(0, 16, 2))
        if isinstance(value, bytes):
            return value.decode("latin-1")
        return format_printf(spec, value, _size_of(t, pointer_size))


_FORMAT_ITEM = re.compile(r"%%|%!(?P<macro>[A-Z]+)!|%(?P<num>\d+)(?:!(?P<spec>[^!]*)!)?")
# A width starts with 1-9 (a 0 is a flag): flags and width cannot trade digits, so a long
# spec is matched in one pass.
_PRINTF = re.compile(r"(?P<flags>[-+ #0]*)(?P<width>[1-9]\d*)?(?P<prec>\.\d+)?"
                     r"(?P<length>I64|I32|ll|hh|[hlwzLIjt])?(?P<conv>[diuxXopcsSeEfgG])$")
# Widths and precisions above this are taken as this: a TMF (untrusted, from the customer's
# driver package) must not make one message gigabytes long. No real trace message comes near.
MAX_PRINTF_WIDTH = 1024


def _bounded(digits: str | None) -> str:
    if not digits:
        return ""
    return digits if len(digits) <= 4 and int(digits) <= MAX_PRINTF_WIDTH \
        else str(MAX_PRINTF_WIDTH)


def format_printf(spec: str, value, size: int = 4) -> str:
    """One WPP `%N!spec!` item with a printf spec; unknown specs fall back to str().
    Widths and precisions are capped at MAX_PRINTF_WIDTH."""
    m = _PRINTF.match(spec)
    if not m:
        return str(value)
    conv = m.group("conv")
    prec = m.group("prec")
    head = "%" + m.group("flags") + _bounded(m.group("width")) \
        + ("." + _bounded(prec[1:]) if prec else "")
    if isinstance(value, str):
        return (head + "s") % value if conv in "sS" else value
    if isinstance(value, float):
        return (head + (conv if conv in "eEfgG" else "g")) % value
    if not isinstance(value, int):
        return str(value)
    bits = 8 * size
    if conv == "p":
        return "%0*X" % (2 * size, value & ((1 << bits) - 1))
    if conv in "di":
        if value >= 1 << (bits - 1):
            value -= 1 << bits
        return (head + "d") % value
    value &= (1 << bits) - 1
    if conv == "u":
        return (head + "d") % value
    if conv in "xXo":
        return (head + conv) % value
    if conv == "c":
        return chr(value & 0xFF)
    if conv in "sS":
        return (head + "s") % value
    return (head + "g") % value


def _size_of(item_type: str, pointer_size: int) -> int:
    if item_type in _POINTER_TYPES:
        return pointer_size
    code = _FIXED.get(item_type)
    return struct.calcsize("<" + code.lstrip(">")) if code else 4


def _take_arg(item_type: str, data: bytes, pos: int, pointer_size: int):
    """Decode one packed argument at `pos`; returns (value, new position)."""
    if item_type in _POINTER_TYPES:
        end = pos + pointer_size
        if end > len(data):
            raise IndexError
        return int.from_bytes(data[pos:end], "little"), end
    code = _FIXED.get(item_type)
    if code is not None:
        fmt = code if code.startswith(">") else "<" + code
        (value,) = struct.unpack_from(fmt, data, pos)
        if item_type in ("ItemGuid",):
            value = uuid.UUID(bytes_le=value)
        return value, pos + struct.calcsize(fmt)
    if item_type in ("ItemString", "ItemRString", "ItemCString"):
        end = data.find(b"\0", pos)
        if end < 0:
            raise IndexError          # cut inside the string: a truncated payload
        return data[pos:end].decode("latin-1"), end + 1
    if item_type == "ItemWString":
        end = pos
        while True:
            if end + 2 > len(data):
                raise IndexError
            if data[end:end + 2] == b"\0\0":
                break
            end += 2
        return data[pos:end].decode("utf-16-le", "replace"), end + 2
    if item_type in ("ItemPString", "ItemPWString"):
        (n,) = struct.unpack_from("<H", data, pos)
        end = pos + 2 + n
        if end > len(data):
            raise IndexError
        raw = data[pos + 2:end]
        wide = item_type == "ItemPWString"
        text = raw.decode("utf-16-le", "replace") if wide else raw.decode("latin-1")
        return text, end
    if item_type == "ItemSid":
        count = data[pos + 1]
        end = pos + 8 + 4 * count
        if end > len(data):
            raise IndexError
        return "S-" + data[pos:end].hex(), end
    raise ValueError(f"unknown WPP argument type {item_type}")


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip("{}"))


# --- loading ------------------------------------------------------------------------------------
_GUID_LINE = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12})(?:\s+([^/\s][^/]*?))?\s*(?://(.*))?$")
_TYPEV = re.compile(r"^#typev\s+(\S+)\s+(\d+)\s+\"")
_ARG_LINE = re.compile(r"^(.*?),\s*(Item\w+)(?:\(([^)]*)\))?\s*(?:(?:--|//)\s*(\d+))?\s*$")
_ENUM_VALUE = re.compile(r"^(\w+)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*(?://.*)?$")
_ATTR = re.compile(r"(\w+)=(\S*)")


def _tmf_files(dirs: Iterable[Path | str] | Path | str) -> list[Path]:
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    out: list[Path] = []
    for d in dirs:
        d = Path(d)
        if d.is_dir():
            files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".tmf" and p.is_file())
            if not files:
                raise InputError(d, "no .tmf files in this --tmf directory")
        elif d.is_file():
            files = [d]
        else:
            raise InputError(d, "no such TMF file or directory")
        out += files
    return out


def load_tmf_dir(dirs: Iterable[Path | str] | Path | str) -> TmfCatalog:
    """Load every *.tmf under the given directories (or the given files) into one catalogue."""
    catalog = TmfCatalog()
    for f in _tmf_files(dirs):
        load_tmf_file(f, catalog)
    return catalog


_LOADED: dict[tuple, TmfCatalog] = {}


def load_tmf_dir_once(dirs: Iterable[Path | str] | Path | str) -> TmfCatalog:
    """load_tmf_dir, remembered: read_inputs checks --tmf up front (a bad TMF is one line, exit
    2, whatever the inputs) and the .etl WPP decoder then uses what it loaded. Keyed by every
    file's path, size and modification time, so an edited TMF is read again."""
    files = _tmf_files(dirs)
    key = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    catalog = _LOADED.get(key)
    if catalog is None:
        catalog = TmfCatalog()
        for f in files:
            load_tmf_file(f, catalog)
        if len(_LOADED) >= 8:             # a long-lived process: keep the few latest
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = catalog
    return catalog


def _tmf_text(path: Path) -> str:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read TMF file: {e.strerror}") from None
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    return raw.decode("utf-8-sig", errors="replace")


def _block_line(block: list | dict, s: str, bad) -> None:
    """One line inside a `{ }` block: an argument of a #typev (into its list) or a value of an
    #enumv (into its table)."""
    if isinstance(block, dict):
        m = _ENUM_VALUE.match(s)
        if not m:
            raise bad("expected 'Name = value' in #enumv block")
        block[int(m.group(2), 0)] = m.group(1)
        return
    m = _ARG_LINE.match(s)
    if not m:
        raise bad("expected '<expression>, <ItemType> -- <number>' in #typev block")
    number = int(m.group(4)) if m.group(4) else 10 + len(block)
    inner = [x.strip() for x in (m.group(3) or "").split(",") if x.strip()]
    enum = inner[0] if len(inner) == 1 else None
    names = tuple(inner) if len(inner) > 1 else ()
    block.append(TmfArgument(number, m.group(2), enum, names))


def _typev(s: str, guid: uuid.UUID | None, source: str, bad) -> TmfMessage:
    """A `#typev <name> <number> "<format>" // FUNC=... LEVEL=...` line: its message (arguments
    to follow in a block)."""
    m = _TYPEV.match(s)
    if not m:
        raise bad("expected '#typev <name> <number> \"<format>\" // ...'")
    if guid is None:
        raise bad("#typev before any message GUID line")
    rest = s[m.end() - 1:]
    close = rest.rfind('"')
    if close <= 0:
        raise bad("format string has no closing quote")
    attrs = dict(_ATTR.findall(rest[close + 1:]))
    return TmfMessage(guid=guid, number=int(m.group(2)), name=m.group(1), fmt=rest[1:close],
                      function=attrs.get("FUNC") or None, level=attrs.get("LEVEL") or None,
                      flags=attrs.get("FLAGS") or None, args=[], source=source)


def load_tmf_file(path: Path, catalog: TmfCatalog | None = None) -> TmfCatalog:
    catalog = catalog if catalog is not None else TmfCatalog()
    guid: uuid.UUID | None = None
    block: list | dict | None = None    # args list or enum dict being filled
    block_start = 0
    pending = None                      # the #typev / #enumv waiting for its "{"
    for lineno, line in enumerate(_tmf_text(path).splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("//"):
            continue

        def bad(why: str) -> InputError:
            return InputError(path, f"line {lineno}: {why}: {s[:80]!r}")

        if block is not None:
            if s == "}":
                block = None
            else:
                _block_line(block, s, bad)
            continue
        if s == "{":
            if pending is None:
                raise bad("'{' without a #typev or #enumv before it")
            block, block_start, pending = pending, lineno, None
            continue
        if s == "}":
            raise bad("'}' without an open block")
        if s.startswith("#typev"):
            msg = _typev(s, guid, f"{path}:{lineno}", bad)
            catalog.messages[(guid, msg.number)] = msg
            pending = msg.args
            continue
        if s.startswith("#enumv"):
            parts = s.split()
            if len(parts) < 2:
                raise bad("expected '#enumv <EnumName> ...'")
            pending = catalog.enums.setdefault(parts[1], {})
            continue
        if s.startswith("#"):
            continue                    # other directives (#typed, #level ...) carry nothing we use
        m = _GUID_LINE.match(s)
        if not m:
            raise bad("expected a message GUID line, #typev, #enumv or a block")
        guid = uuid.UUID(m.group(1))
        attrs = dict(_ATTR.findall(m.group(3) or ""))
        catalog.components[guid] = ((m.group(2) or "").strip() or None, attrs.get("SRC") or None)
        pending = None
    if block is not None:
        raise InputError(path, f"line {block_start}: block opened here is never closed with '}}'")
    return catalog
