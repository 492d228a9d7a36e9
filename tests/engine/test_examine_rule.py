"""An Examine rule reaches nothing but the IRP it judges (issue 12: rules from a config file or a
colleague's command line must not reach the file system)."""

from __future__ import annotations

import polars as pl
import pytest

from fpreplay.engine import examine_verdicts, parse_policy
from fpreplay.errors import ConfigError
from fpreplay.schema import conform_irps

IRPS = conform_irps(pl.DataFrame({
    "irp": [1, 2, 3, 4], "major": [3, 4, 4, 0x0E], "bytes": [512, 4096, 131072, None],
    "irp_flags": [0x2, 0, 0x43, None], "paging": [True, False, False, None],
    "queue": ["default", "default", "x", None], "device": ["disk0", "DISK1", None, "disk0"],
    "arrive_ns": [0, 1, 2, 3]}))


@pytest.mark.parametrize("rule, verdicts", [
    ("paging OR major = 4", [True, True, True, False]),
    ("major = 4 AND bytes >= 65536", [False, False, True, False]),
    ("queue = 'x' OR major IN (3, 14)", [True, False, True, True]),
    ("irp_flags & 2 <> 0", [True, False, True, False]),
    ("NOT paging", [False, True, True, False]),
    ("bytes BETWEEN 1000 AND 200000", [False, True, True, False]),
    ("device IS NULL", [False, False, True, False]),
    ("lower(device) = 'disk1'", [False, True, False, False]),
    ("coalesce(bytes, 0) = 0", [False, False, False, True]),
    ("CASE WHEN major = 3 THEN paging ELSE bytes > 1000 END", [True, True, True, False]),
])
def test_rules_of_the_irp_decide_as_written(rule, verdicts):
    """The vetted rule (regenerated from its syntax tree) decides as the text says."""
    got = examine_verdicts(parse_policy(f"examine:4:{rule}"), IRPS).to_list()
    assert got == verdicts


@pytest.mark.parametrize("rule, names", [
    ("(SELECT count(*) FROM read_json('{path}')) > 0", "SELECT"),
    ("major IN (SELECT 3)", "SELECT"),
    ("read_csv('{path}') IS NULL", "READ_CSV"),
    ("read_parquet('{path}') IS NULL", "READ_PARQUET"),
    ("count(*) > 1", "COUNT"),
    ("sum(bytes) > 1", "SUM"),
    ("major = 4; DROP TABLE irps", "DROP"),
    ("t.major = 4", "without a table"),
    ("nosuch = 1", "no column 'nosuch'"),
    ("_fail", "no column '_fail'"),
])
def test_rules_that_reach_outside_the_irp_are_refused_before_polars(tmp_path, rule, names):
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2"}\n')
    for path in (secret, tmp_path / "absent.json"):
        with pytest.raises(ConfigError) as raised:
            parse_policy(f"examine:4:{rule.format(path=path)}")
        message = str(raised.value)
        assert names.lower() in message.lower(), message
        # Nothing about the file leaks: the same words whether it exists or not, none of its text.
        assert "hunter2" not in message and "No such file" not in message
