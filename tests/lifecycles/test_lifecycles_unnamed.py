"""An event table from another tool may carry only ts_ns and kind (contract section 3)."""

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles


def test_evidence_and_warnings_name_the_kind_when_events_have_no_name():
    events = pl.DataFrame({
        "ts_ns": [1, 2, 3, 4],
        "kind": ["irp_dispatch", "request_alloc_failed", "irp_complete", "irp_dispatch"],
        "irp": [16, 16, 16, 32],
        "status": [None, None, 0xC000009A, None],
    })
    diagnostics = Diagnostics()
    irps = build_lifecycles(events, diagnostics).sort("irp")
    assert irps["actual"].to_list() == ["alloc_failed", "incomplete"]
    assert all(e and "None" not in e and "?" not in e for e in irps["evidence"].to_list())
    assert "request_alloc_failed" in irps["evidence"][0]
    assert any("by first event: irp_dispatch 1" in w for w in diagnostics.warnings)
