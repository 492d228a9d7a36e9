"""What every simulation of one command shares, parsed once: the driver model, the memory model,
the service time and the seed (contract sections 5 and 6)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from fpreplay.engine import (DriverModel, MemoryModel, Policy, load_driver_model, parse_memory,
                             parse_policy)
from fpreplay.errors import ConfigError
from fpreplay.replay.whatif.seeds import VERIFIER_SEEDS


@dataclass(frozen=True)
class WhatIfSettings:
    """Parsed values, not text: a command reads its driver config once and every simulation of
    it (a policy, a sweep size, a seed) starts from these.

    driver: the model without a --policy (each run puts its policy on the fp_capable queues);
    service_time_ns: None = the median observed hold time (contract 6);
    seed: None = not given: 0, except under `verifier-random` without a seed of its own, whose
    seed no trace holds: then one run per seed of VERIFIER_SEEDS (see `runs`)."""

    driver: DriverModel = field(default_factory=lambda: load_driver_model(None))
    memory: MemoryModel = field(default_factory=lambda: parse_memory("observed"))
    service_time_ns: int | None = None
    seed: int | None = None

    def runs(self) -> list[WhatIfSettings]:
        """The settings of each simulation run, each with its seed: one run, or one per
        verifier seed when the seed is unknowable."""
        if self.seed is None and self.memory.kind == "verifier-random" \
                and self.memory.seed is None:
            return [replace(self, seed=s) for s in VERIFIER_SEEDS]
        return [replace(self, seed=self.seed or 0)]

    @property
    def seeds(self) -> list[int]:
        """The seeds run when there are several (empty for a single run)."""
        runs = self.runs()
        return [r.seed for r in runs] if len(runs) > 1 else []

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
