"""What every simulation of one command shares, parsed once: the driver model, the memory model,
the service time and the seed (contract sections 5 and 6)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fpreplay.engine import (DriverModel, MemoryModel, Policy, load_driver_model, parse_memory,
                             parse_policy)
from fpreplay.errors import ConfigError


@dataclass(frozen=True)
class WhatIfSettings:
    """Parsed values, not text: a command reads its driver config once and every simulation of
    it (a policy, a sweep size, a seed) starts from these.

    driver: the model without a --policy (each run puts its policy on the fp_capable queues);
    service_time_ns: None = the median observed hold time (contract 6)."""

    driver: DriverModel = field(default_factory=lambda: load_driver_model(None))
    memory: MemoryModel = field(default_factory=lambda: parse_memory("observed"))
    service_time_ns: int | None = None
    seed: int = 0

    @property
    def window(self) -> bool:
        """Memory `window` fails allocations inside the trace's incidents: runs need them."""
        return self.memory.kind == "window"


def as_policy(policy: Policy | str) -> Policy:
    """A Policy as given, or parsed from its text (`always:8`)."""
    return policy if isinstance(policy, Policy) else parse_policy(policy)


def parse_policies(policies: Iterable[Policy | str]) -> list[Policy]:
    """The policies of one comparison: at least one, none twice."""
    parsed = [as_policy(p) for p in policies]
    if not parsed:
        raise ConfigError("no policy to compare: give at least one of none, always:N, paging:N, "
                          "examine:N:SQL")
    texts = [p.text for p in parsed]
    twice = next((t for i, t in enumerate(texts) if t in texts[:i]), None)
    if twice is not None:
        raise ConfigError(f"policy {twice!r} is given twice")
    return parsed
