"""The what-if computations behind `compare`, `sweep`, `incidents` and `report`, as a library.

Everything here returns polars frames and plain dicts, so a script can do what the CLI does:

    from fpreplay.replay.whatif import compare, sweep
    cmp = compare(irps, ["always:8", "paging:8"], events=events)   # or engine.Policy objects
    cmp.summaries            # one dict per policy, the rows of `fpreplay compare`
    cmp.per_irp              # one row per IRP: actual against each policy (`compare -o`)

Every count in a summary is a count of rows of `per_irp` (the `<policy>:verdict`,
`<policy>:outcome`, `<policy>:status` and `<policy>:parked` columns), so each number can be traced
to IRPs. An IRP still parked when the trace ends (`parked_at_end`) counts as parked, and as neither
rescued nor still failed.

Settings (driver model, memory model, service time, seed) are parsed values
(`WhatIfSettings`), read once per command; errors are ConfigErrors about the value, in the
library's words (the CLI adds the option's name). Modules: settings, outcomes (one policy's run
against what happened), comparison, sizing (sweep), recommend (the one
recommendation rule every command gives), stories (explain).
"""

from __future__ import annotations

from fpreplay.replay.whatif.comparison import (
    Comparison, compare, default_policies, incident_outcomes, recommend,
)
from fpreplay.replay.whatif.outcomes import (
    DELIVERED_OUTCOMES, SERVED_ACTUALS, TIMELINE_VALUES, actual_counts, actual_timeline,
    concurrency_peak, high_water, observed_row, queue_operations, reserved_deliveries,
    run_policy, summarize, total_timeline, verdicts, window_high_water, window_incidents,
)
from fpreplay.replay.whatif.recommend import (
    RULE, Recommendation, fits, from_comparison, from_sweep, policy_text, reserve_kind,
)
from fpreplay.replay.whatif.settings import WhatIfSettings, as_policy, parse_policies
from fpreplay.replay.whatif.sizing import (
    PEAK_PROBE_CAP, SWEEP_EXHAUSTIVE, Sweep, SweepKind, peak_demand, sweep, sweep_kind,
    sweep_rows, recommend_size,
)
from fpreplay.replay.whatif.stream import IrpSource, as_source, replay_pass
from fpreplay.replay.whatif.stories import (
    explain, parse_irp_address, parse_irp_at, stories_of_rows,
)
from fpreplay.replay.whatif.traced import TracedPolicy, traced_policy

__all__ = [
    "WhatIfSettings", "as_policy", "parse_policies", "Comparison", "Sweep", "SweepKind",
    "compare", "sweep", "sweep_kind", "explain", "parse_irp_address", "parse_irp_at",
    "stories_of_rows", "TracedPolicy", "traced_policy", "verdicts", "summarize",
    "actual_counts", "observed_row", "incident_outcomes", "queue_operations",
    "actual_timeline", "total_timeline", "sweep_rows", "default_policies", "run_policy",
    "peak_demand", "high_water", "window_high_water", "window_incidents", "concurrency_peak",
    "reserved_deliveries", "DELIVERED_OUTCOMES", "SERVED_ACTUALS", "TIMELINE_VALUES",
    "PEAK_PROBE_CAP", "SWEEP_EXHAUSTIVE", "RULE", "Recommendation", "recommend", "fits",
    "from_comparison", "from_sweep", "recommend_size", "policy_text", "reserve_kind",
    "IrpSource", "as_source", "replay_pass",
]
