"""Warnings and counters that travel with a result, so that nothing is silently dropped.

Every reader, the lifecycle builder and the engine append to one Diagnostics; the CLI prints its
warnings on stderr and the JSON documents list them under "warnings".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


REPEATS_NAMED = 5      # places a summarised warning names


@dataclass
class Diagnostics:
    warnings: list[str] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)
    # kind -> [index in warnings, first message, places named, count] (warn_repeated)
    _repeated: dict = field(default_factory=dict, repr=False, compare=False)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def warn_repeated(self, kind: str, where: str, message: str) -> None:
        """A warning that can recur once per buffer or record of a damaged input: the first of
        a `kind` is kept as it is; the next ones turn it into one line with their count and
        the first places (`where`, e.g. 'byte 4096'), instead of a line each."""
        seen = self._repeated.get(kind)
        if seen is None:
            self._repeated[kind] = [len(self.warnings), message, [where], 1]
            self.warnings.append(message)
            return
        index, first, places, count = seen
        seen[3] = count = count + 1
        if len(places) < REPEATS_NAMED:
            places.append(where)
        more = ", ..." if count > len(places) else ""
        self.warnings[index] = f"{first} [{count:,} times: {', '.join(places)}{more}]"

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
