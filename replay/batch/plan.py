"""Which files are one trace: the inputs of a batch grouped into traces.

The rule (docs/batch.md):
- Inputs are files, directories (searched recursively) and glob patterns (`**` allowed).
- In one folder, files whose names share a stem (the name up to its first dot) are one trace:
  `run1.etl` and `run1.ifr.txt` are read together.
- A folder holding exactly one ETW trace (`.etl`, `.etl.gz`, `.zip`) also takes its text dumps
  (`.txt`, an in-flight recorder or tracefmt output) of other stems as companions: a trace and
  the `ifr.txt` captured with it.
- `.tmf` files make their folder the `--tmf` directory of the traces in it; they are not traces.
- Files that are not traces are skipped: `.tmf .toml .json .md .html .png .pdb .py .sh`, and
  everything inside the batch's own output directory.
"""

from __future__ import annotations

import glob
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fpreplay.errors import ConfigError

NOT_TRACES = {".tmf", ".toml", ".json", ".md", ".html", ".png", ".pdb", ".py", ".sh"}
_ETW_SUFFIXES = (".etl", ".etl.gz", ".etl.zip", ".zip")


@dataclass(frozen=True)
class TraceJob:
    """One trace of a batch: its files, read together as one timeline, and its TMF folders."""

    name: str                   # unique in the batch; the Hive partition value (trace=NAME)
    inputs: tuple[Path, ...]
    tmf: tuple[Path, ...] = ()

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.inputs if p.is_file())

    @property
    def mtime_ns(self) -> int:
        return max((p.stat().st_mtime_ns for p in self.inputs if p.is_file()), default=0)


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _is_etw(path: Path) -> bool:
    return path.name.lower().endswith(_ETW_SUFFIXES)


def _expand(inputs: list[Path], skip: Path | None) -> list[Path]:
    files: list[Path] = []
    for given in inputs:
        text = str(given)
        if any(c in text for c in "*?[") and not given.exists():
            matched = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matched:
                raise ConfigError(f"{text}: no file matches")
            candidates = matched
        elif given.exists():
            candidates = [given]
        else:
            raise ConfigError(f"{given}: no such file or directory")
        for p in candidates:
            # A folder (given or matched) is walked once; its files are the candidates.
            for q in (sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]):
                if skip is not None and skip in q.resolve().parents:
                    continue
                files.append(q)
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _safe_name(relative: str) -> str:
    """A partition value every engine reads back unchanged: letters, digits, . _ - only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", relative.replace("/", "__")) or "trace"


def plan_traces(inputs: list[Path], output_dir: Path | None = None) -> list[TraceJob]:
    """The traces of a batch, in a stable order, each named by its path below the inputs'
    common folder."""
    skip = output_dir.resolve() if output_dir is not None else None
    files = _expand([Path(p) for p in inputs], skip)
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for f in files:
        by_folder[f.parent].append(f)
    groups: list[tuple[list[Path], tuple[Path, ...]]] = []
    for folder, members in sorted(by_folder.items()):
        tmf = (folder,) if any(m.suffix.lower() == ".tmf" for m in members) else ()
        traces = [m for m in members if m.suffix.lower() not in NOT_TRACES]
        stems: dict[str, list[Path]] = defaultdict(list)
        for m in traces:
            stems[_stem(m)].append(m)
        etw_stems = [s for s, ms in stems.items() if any(_is_etw(m) for m in ms)]
        if len(etw_stems) == 1:
            host = etw_stems[0]
            for s in [s for s in stems if s != host]:
                if all(m.suffix.lower() == ".txt" for m in stems[s]):
                    stems[host] += stems.pop(s)
        for s in sorted(stems):
            # The ETW trace first: it names the group and sets the timeline's clock.
            members_sorted = sorted(stems[s], key=lambda m: (not _is_etw(m), m.name))
            groups.append((members_sorted, tmf))
    if not groups:
        raise ConfigError("no trace among the inputs")
    # Named by where the user put them (a symbolic link keeps its own name).
    primaries = [Path(os.path.abspath(g[0][0])) for g in groups]
    root = Path(*_common_parts([p.parent.parts for p in primaries]))
    jobs, names = [], set()
    for (members, tmf), primary in zip(groups, primaries):
        name = _safe_name(str(primary.relative_to(root)))
        while name in names:
            name += "_"
        names.add(name)
        jobs.append(TraceJob(name=name, inputs=tuple(members), tmf=tmf))
    return jobs


def _common_parts(parts_list: list[tuple[str, ...]]) -> tuple[str, ...]:
    common = parts_list[0]
    for parts in parts_list[1:]:
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    return common or ("/",)
