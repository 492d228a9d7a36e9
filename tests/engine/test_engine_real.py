"""The engine on IRP lifecycles built from real public traces (../shared/traces/real)."""

from __future__ import annotations

import polars as pl
import pytest

from fpreplay.engine import (load_driver_model, parse_memory, parse_policy, simulate,
                             simulated_actual)


@pytest.fixture(scope="module")
def filtrace_irps():
    from conftest import real_trace
    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers import ReadOptions, read_inputs

    read = read_inputs([real_trace("etl/filtrace_diskio.etl")], ReadOptions())
    return build_lifecycles(read.events, read.diagnostics)


def test_observed_replay_without_policy_reproduces_the_trace(filtrace_irps):
    irps = filtrace_irps
    assert irps.height >= 119
    res = simulate(irps, load_driver_model(None), parse_memory("observed"))
    got = res.outcomes.select(simulated_actual())["actual"]
    assert got.to_list() == irps["actual"].to_list()
    served = pl.concat([irps.select("complete_ns", "service_ns"),
                        res.outcomes.select(pl.col("complete_ns").alias("sim"))],
                       how="horizontal").filter(pl.col("service_ns").is_not_null())
    assert served["sim"].to_list() == served["complete_ns"].to_list()
    # The real trace's concurrency is what the outstanding column shows at its peak.
    assert res.timeline["outstanding"].max() >= 1


@pytest.mark.parametrize("policy", ["always:2", "paging:1", "examine:1:major = 4"])
def test_fail_all_on_real_lifecycles_fast_equals_reference(filtrace_irps, policy):
    driver = load_driver_model(None, parse_policy(policy))
    fast = simulate(filtrace_irps, driver, parse_memory("fail-all"))
    ref = simulate(filtrace_irps, driver, parse_memory("fail-all"), fast=False)
    assert fast.outcomes.equals(ref.outcomes) and fast.timeline.equals(ref.timeline)
    out = fast.outcomes
    n = parse_policy(policy).reserved
    # Three devices (disk6, disk9 and IRPs without one), each with its own pool; disk6's fills.
    hw = fast.reserve_high_water
    assert set(hw) == {"disk6/default", "disk9/default", "(unnamed)/default"}
    assert hw["disk6/default"] == n                            # every allocation fails
    # disk9's one READ takes its own device's reserved request, unless the policy refuses it.
    assert hw["disk9/default"] == (1 if policy.startswith("always") else 0)
    assert hw["(unnamed)/default"] == 0                        # FLUSH_BUFFERS reach no queue
    assert out.filter(pl.col("alloc_failed")).height == out.filter(
        pl.col("outcome") != "normal").height
