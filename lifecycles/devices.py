"""One device, one name: the sources name a device in their own words, and the lifecycles use one.

The driver's instrumentation names its device as its author does ("stordrv"), the kernel by a
`\\Device\\...` path, the framework's IFR/WPP lines by the device object ("0xffffe0012345a000",
from "!devobj 0x..."), DiskIo by the disk number ("disk0"). When one IRP's events give names of
different kinds, they are names of one device (two names of one kind, say a filter's and the
FDO's device objects, are two devices of the stack and stay apart). The best kind wins, in the
order of NAME_KINDS: the driver's own name (what its author and the driver model know), then the
`\\Device` path (stable across boots), then the device object (a pointer, new at every boot), then
the disk number (the whole disk stack, not the driver's device). The other names stay in the
`device_alias` column, and the choice holds for every IRP of that device: an IRP that only the
disk saw is reported under the driver's name too, unless that disk number was seen with several
devices (then it keeps its own name, and a warning says so).
"""

from __future__ import annotations

import re

import polars as pl

from fpreplay.diagnostics import Diagnostics

NAME_KINDS = ("driver", "device path", "device object", "disk")
DEVICE_COLUMNS = [f"_dev{k}" for k in range(len(NAME_KINDS))]   # the first name of each kind
_PATTERNS = ((1, re.compile(r"^\\device\\", re.I)), (2, re.compile(r"^0x[0-9a-f]+$", re.I)),
             (3, re.compile(r"^disk\d+$")))


def name_kind(name: str) -> int:
    """The index in NAME_KINDS of a device name's kind."""
    for kind, pattern in _PATTERNS:
        if pattern.match(name):
            return kind
    return 0


def _resolve(better: dict[str, set[str]]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each alias -> the one best name it leads to, following better names (a device object seen
    beside the driver's name, a disk number beside that device object); an alias that leads to
    several (a disk holding two drivers' devices) is ambiguous and maps nowhere. Kinds only
    improve along a link, so the recursion is at most len(NAME_KINDS) deep."""
    roots: dict[str, set[str]] = {}

    def of(name: str) -> set[str]:
        if name not in roots:
            roots[name] = set().union(*map(of, better[name])) if name in better else {name}
        return roots[name]

    final = {a: next(iter(of(a))) for a in better if len(of(a)) == 1}
    return final, {a: of(a) for a in better if len(of(a)) > 1}


class DeviceNames:
    """The device names the IRPs gave, learned as the lifecycles are emitted: each distinct
    combination of `_dev0`.. `_dev3` (one name per kind) and how many IRPs gave it, a handful per
    device. Rows keep their own names; once every IRP is in, resolve() decides the one name per
    device and apply() renames the rows as they are read back (so an alias learned late still
    renames the IRPs emitted before it)."""

    def __init__(self) -> None:
        self.combos: dict[tuple, list[int]] = {}   # names -> [IRPs, of them fast-I/O tries]
        self.final: dict[str, str] = {}
        self.ambiguous: dict[str, set[str]] = {}

    def add(self, rows: pl.DataFrame, dropped: pl.Expr) -> None:
        """The rows' names; `dropped`: the rows the table will not keep (fast-I/O tries)."""
        seen = rows.group_by(DEVICE_COLUMNS).agg(pl.len().alias("_n"),
                                                 dropped.fill_null(False).sum().alias("_d"))
        for *names, n, d in seen.iter_rows():
            slot = self.combos.setdefault(tuple(names), [0, 0])
            slot[0] += n
            slot[1] += d

    def resolve(self, diagnostics: Diagnostics) -> None:
        """Decide every device's name (see the module) and say what was unified."""
        better: dict[str, set[str]] = {}
        for names in self.combos:
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    if names[i] is not None and names[j] is not None:
                        better.setdefault(names[j], set()).add(names[i])
        self.final, self.ambiguous = _resolve(better)
        renamed = sum(n for names, (n, _) in self.combos.items() if self._alias(names))
        _report(renamed, self.final, self.ambiguous, diagnostics)

    def _alias(self, names: tuple) -> str | None:
        first = next((n for n in names if n is not None), None)
        device = self.final.get(first, first)
        return ", ".join(n for n in names if n is not None and n != device) or None

    def alias_map(self, kept_only: bool = True) -> dict[str, str]:
        """What alias_map says of the table (kept_only) or of every row before the fast-I/O
        tries are dropped."""
        devices: dict[str, set] = {}
        for names, (n, dropped) in self.combos.items():
            alias = self._alias(names)
            if alias is not None and (n > dropped or not kept_only):
                first = next(x for x in names if x is not None)
                for a in alias.split(", "):
                    devices.setdefault(a, set()).add(self.final.get(first, first))
        return {a: next(iter(d)) for a, d in devices.items() if len(d) == 1}

    def apply(self, lc: pl.DataFrame) -> pl.DataFrame:
        """`device` and `device_alias` from the `_dev*` columns (dropped here)."""
        lc = lc.with_columns(pl.coalesce(DEVICE_COLUMNS).replace(self.final).alias("device"))
        others = [pl.when(pl.col(d) != pl.col("device")).then(pl.col(d)) for d in DEVICE_COLUMNS]
        lc = lc.with_columns(pl.concat_str(others, separator=", ", ignore_nulls=True)
                             .replace("", None).alias("device_alias"))
        return lc.drop(DEVICE_COLUMNS)


def _report(renamed: int, final: dict[str, str], ambiguous: dict[str, set[str]],
            diagnostics: Diagnostics) -> None:
    if renamed:
        diagnostics.count("device_names_unified", renamed)
        pairs = ", ".join(f"{a} -> {w}" for a, w in sorted(final.items())[:6])
        diagnostics.warn(f"{renamed} IRP(s) name their device in more than one "
                         f"source's words ({pairs}): each device is reported under one name (the "
                         f"driver's own, else a \\Device path, a device object, a disk number), "
                         f"the other names in device_alias")
    if ambiguous:
        diagnostics.count("device_names_ambiguous", len(ambiguous))
        said = "; ".join(f"{a} with {', '.join(sorted(w))}" for a, w in sorted(ambiguous.items()))
        diagnostics.warn(f"{len(ambiguous)} device name(s) were seen beside several devices "
                         f"({said}): IRPs named only so keep that name")


def alias_map(irps: pl.DataFrame) -> dict[str, str]:
    """Each alias in an IRP table's `device_alias` -> the device it names (one device only), for
    events that name a device in another source's words (incident signals, queue operations)."""
    if "device_alias" not in irps.columns:
        return {}
    pairs = (irps.select("device", pl.col("device_alias").str.split(", ").alias("_a"))
             .explode("_a").filter(pl.col("_a").is_not_null())
             .group_by("_a").agg(pl.col("device").unique()))
    return {a: d[0] for a, d in pairs.iter_rows() if len(d) == 1}
