"""What a trace cannot tell (issue 9), through the real CLI: every assumption fpreplay makes in its
place is a warning with a count, on stderr and in the JSON `warnings`, and appears only when it
was made. Small event tables, written as .parquet and read back like any trace."""

from __future__ import annotations

import json

import polars as pl

from fpreplay.replay.cli import main
from fpreplay.schema import (
    IRP_MJ_CREATE, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, STATUS_CANCELLED,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS, conform_events,
)
from scenario_tables import MS, ev

FLUSH, READ, CREATE = IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_CREATE


def _irp(t_ms: float, irp: int, status: int, done_ms: float = 0.01, major: int = READ,
         flags: int | None = 0, **extra) -> list[dict]:
    common = {"device": "disk0", "major": major, "irp_flags": flags, "bytes": 4096}
    return [ev(t_ms, "irp_dispatch", irp, **common), *extra.get("between", []),
            ev(t_ms + done_ms, "irp_complete", irp, status=status, **common)]


def _trace(tmp_path, rows: list[dict], name: str = "t.parquet"):
    path = tmp_path / name
    conform_events(pl.DataFrame(rows, infer_schema_length=None)).write_parquet(path)
    return path


def _run(capsys, *args) -> tuple[dict, str]:
    """The JSON document and stderr (whitespace folded: the console wraps long lines)."""
    assert main([str(a) for a in (*args, "--json")]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), " ".join(err.split())


def _warned(doc: dict, err: str, words: str) -> list[str]:
    """The JSON warnings containing `words`; each is on stderr too."""
    found = [w for w in doc["warnings"] if words in w]
    for w in found:
        assert f"warning: {' '.join(w.split())}" in err
    return found


def _healthy(n: int = 4) -> list[dict]:
    return [r for i in range(n) for r in _irp(10 * i, 0x100 + i, STATUS_SUCCESS, 2)]


# --- STATUS_INSUFFICIENT_RESOURCES with no framework message ------------------------------------

def test_a_flush_completed_insufficient_resources_is_the_drivers_own_failure(capsys, tmp_path):
    """FLUSH_BUFFERS never meets a request allocation: failed, not alloc_failed, and said."""
    trace = _trace(tmp_path, _healthy() + _irp(100, 0xF1, STATUS_INSUFFICIENT_RESOURCES, major=FLUSH))
    doc, err = _run(capsys, "analyze", trace, "-o", tmp_path / "irps.parquet")
    assert doc["actual"]["failed"] == 1 and doc["actual"]["alloc_failed"] == 0
    irps = pl.read_parquet(tmp_path / "irps.parquet").filter(pl.col("irp") == 0xF1)
    assert irps["actual"].to_list() == ["failed"] and irps["alloc_failure"].to_list() == [None]
    assert len(_warned(doc, err, "1 IRP(s) of majors that never meet a request allocation")) == 1
    assert not _warned(doc, err, "alloc_failure 'inferred'")


def test_a_read_with_no_framework_message_is_an_inferred_allocation_failure(capsys, tmp_path):
    rows = _healthy() + _irp(100, 0xA1, STATUS_INSUFFICIENT_RESOURCES) \
        + _irp(101, 0xA2, STATUS_INSUFFICIENT_RESOURCES) \
        + _irp(102, 0xC1, STATUS_INSUFFICIENT_RESOURCES, major=CREATE)   # creates can fail so
    doc, err = _run(capsys, "analyze", _trace(tmp_path, rows), "-o", tmp_path / "irps.parquet")
    assert doc["actual"]["alloc_failed"] == 3 and doc["actual"]["failed"] == 0
    irps = pl.read_parquet(tmp_path / "irps.parquet").filter(pl.col("actual") == "alloc_failed")
    assert irps["alloc_failure"].to_list() == ["inferred"] * 3
    assert all("(inferred)" in e for e in irps["evidence"])
    assert len(_warned(doc, err, "3 IRP(s) completed with STATUS_INSUFFICIENT_RESOURCES and no "
                                 "framework message")) == 1


def test_a_read_with_a_framework_message_is_a_request_failure_and_no_warning(capsys, tmp_path):
    named = _irp(100, 0xA1, STATUS_INSUFFICIENT_RESOURCES, between=[
        ev(100.001, "request_alloc_failed", 0xA1, device="disk0")])
    tied = _irp(200, 0xA2, STATUS_INSUFFICIENT_RESOURCES, between=[      # names no IRP: tied
        ev(200.002, "request_alloc_failed", None, device="disk0")])
    doc, err = _run(capsys, "analyze", _trace(tmp_path, _healthy() + named + tied),
                    "-o", tmp_path / "irps.parquet")
    assert doc["actual"]["alloc_failed"] == 2
    irps = pl.read_parquet(tmp_path / "irps.parquet").filter(pl.col("actual") == "alloc_failed")
    assert irps["alloc_failure"].to_list() == ["request", "request"]
    assert not _warned(doc, err, "STATUS_INSUFFICIENT_RESOURCES")


def test_an_inferred_failure_on_a_queue_with_a_policy_in_the_config_is_failed(capsys, tmp_path):
    """The framework never completes an I/O-queue IRP so on a queue with forward progress: with a
    driver config saying the queue had one, such IRPs are `failed` (contract section 4), not
    allocation failures a policy could rescue, and a warning counts them."""
    rows = _healthy() + _irp(100, 0xA1, STATUS_INSUFFICIENT_RESOURCES) \
        + _irp(101, 0xA2, STATUS_INSUFFICIENT_RESOURCES) \
        + _irp(102, 0xC1, STATUS_INSUFFICIENT_RESOURCES, major=CREATE)   # possible there
    trace = _trace(tmp_path, rows)
    config = tmp_path / "driver.toml"
    config.write_text('[[queues]]\nname = "io"\ndefault = true\npolicy = "always:2"\n'
                      'fp_capable = false\n', encoding="utf-8")
    doc, err = _run(capsys, "compare", trace, "--policy", "always:1", "--config", config)
    assert len(_warned(doc, err, "2 IRP(s) completed with STATUS_INSUFFICIENT_RESOURCES and no "
                                 "framework message reach a queue with a forward-progress")) == 1
    # the two READs failed for real: no policy rescues them (the CREATE never reaches a queue)
    assert (doc["actual"]["failed"], doc["actual"]["alloc_failed"]) == (2, 1)
    assert doc["policies"][0]["rescued"] == 0
    # without a policy in the driver model nothing says the framework could not have
    doc, err = _run(capsys, "compare", trace, "--policy", "always:1")
    assert not _warned(doc, err, "reach a queue with a forward-progress")
    assert (doc["actual"]["failed"], doc["actual"]["alloc_failed"]) == (0, 3)
    assert doc["policies"][0]["rescued"] == 2


# --- the verifier's seed ------------------------------------------------------------------------

def test_verifier_random_without_a_seed_says_which_seeds_it_ran(capsys, tmp_path):
    trace = _trace(tmp_path, _healthy(40))
    for command in (["compare", "--policy", "always:1"], ["sweep", "--max", "2"]):
        doc, err = _run(capsys, command[0], trace, *command[1:], "--memory", "verifier-random")
        assert doc["seeds"] == [1, 2, 3, 4, 5]
        assert len(_warned(doc, err, "5 runs, seeds 1, 2, 3, 4, 5")) == 1
        doc, err = _run(capsys, command[0], trace, *command[1:], "--memory", "verifier-random",
                        "--seed", "7")
        assert "seeds" not in doc and not _warned(doc, err, "random seed")


# --- paging flags the trace does not give -------------------------------------------------------

def test_irps_without_flags_under_a_paging_policy_are_counted(capsys, tmp_path):
    starved = [r for i in range(3) for r in _irp(100 + i, 0xA0 + i, STATUS_INSUFFICIENT_RESOURCES,
                                                   flags=None, between=[
        ev(100 + i + 0.001, "request_alloc_failed", 0xA0 + i, device="disk0")])]
    starved += _irp(110, 0xB0, STATUS_INSUFFICIENT_RESOURCES, flags=0x43, between=[
        ev(110.001, "request_alloc_failed", 0xB0, device="disk0")])
    trace = _trace(tmp_path, _healthy() + starved)
    doc, err = _run(capsys, "compare", trace, "--policy", "paging:4")
    assert len(_warned(doc, err, "3 IRP(s) without irp_flags")) == 1
    doc, err = _run(capsys, "compare", trace, "--policy", "always:4")
    assert not _warned(doc, err, "without irp_flags")


# --- a parked IRP the trace saw cancelled -------------------------------------------------------

def test_a_parked_irp_the_trace_saw_cancelled_is_cancelled_and_counted(capsys, tmp_path):
    rows = (_irp(0, 0x1, STATUS_SUCCESS, 10) + _irp(1, 0x2, STATUS_CANCELLED, 2)
            + _irp(2, 0x3, STATUS_SUCCESS, 2))
    trace = _trace(tmp_path, rows)
    doc, err = _run(capsys, "compare", trace, "--policy", "always:1", "--memory", "fail-all")
    assert len(_warned(doc, err, "1 IRP(s) the trace saw cancelled were still parked")) == 1
    assert doc["policies"][0]["cancelled"] >= 1
    doc, err = _run(capsys, "compare", trace, "--policy", "always:2", "--memory", "fail-all")
    assert not _warned(doc, err, "the trace saw cancelled")


def test_the_readme_says_what_a_trace_cannot_tell():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    limits = " ".join(readme.split("## Known limits", 1)[1].split("\n## ", 1)[0].split())
    for words in ("verifier's seed", "seeds 1-5", "STATUS_INSUFFICIENT_RESOURCES",
                  '"inferred"', "FLUSH_BUFFERS", "without flags", "cancelled", "Device names",
                  "device_alias", "not unified"):
        assert words in limits, words
    assert "an incident lists both" not in limits     # one device, one name (lifecycles/devices)
