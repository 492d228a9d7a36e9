"""A kernel trace and the driver's IFR dump of the same run, read together."""

import json

from conftest import SAMPLES
from fpreplay.replay.cli import main


def analyze(capsys, *inputs):
    assert main(["analyze", *map(str, inputs), "--tz", "UTC", "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_two_views_of_one_incident_do_not_double_its_evidence(capsys):
    sample = SAMPLES / "c-purge-during-incident"
    alone = analyze(capsys, sample / "trace.etl")
    both = analyze(capsys, sample / "trace.etl", sample / "ifr.txt")
    assert both["forward_progress"] == alone["forward_progress"]
    assert alone["forward_progress"]["request_alloc_failed"] > 0
    assert both["irps"] == alone["irps"]
