"""Warnings and counters that travel with a result, so that nothing is silently dropped.

Every reader, the lifecycle builder and the engine append to one Diagnostics; the CLI prints its
warnings on stderr and the JSON documents list them under "warnings".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Diagnostics:
    warnings: list[str] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
