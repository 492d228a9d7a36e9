"""A scenario from someone else cannot blow the synthesizer up or reach outside it (issue 12):
rates and counts beyond what can be generated, negative mix weights and examine rules that
reach a file are refused in one line (exit 2) within a bound in time and memory, and the trace,
dump and truth are written atomically, never over the scenario."""

from __future__ import annotations


import pytest

from conftest import measured
from fpreplay.errors import ConfigError, FpreplayError
from fpreplay.replay.cli import main
from fpreplay.synth import scenario as scenario_mod
from fpreplay.synth import synthesize

DEVICE = "[[device]]\nname = 'disk0'\n[[device.queue]]\npolicy = 'always:2'\n"


def _scenario(tmp_path, arrivals="rate = 100", trace="duration = '1s'", extra=""):
    p = tmp_path / "sc.toml"
    p.write_text(f"[trace]\n{trace}\n{DEVICE}[[arrivals]]\n{arrivals}\n{extra}")
    return p


def _refused(tmp_path, capsys, scenario, *words) -> str:
    """synth on the scenario: exit 2, one line naming the file and `words`, in bounded time and
    memory, and no trace written."""
    out = tmp_path / "t.etl"
    code, elapsed, peak = measured(lambda: main(["synth", str(scenario), "-o", str(out), "-q"]))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(scenario) in lines[0] and all(w in lines[0] for w in words), lines[0]
    assert elapsed < 10 and peak < 50 << 20, (elapsed, peak)
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize("rate", ["1e300", "1e7", "inf", "nan", "-5", "0"])
def test_a_rate_beyond_what_can_be_generated_is_refused(tmp_path, capsys, rate):
    _refused(tmp_path, capsys, _scenario(tmp_path, f"rate = {rate}"), "[[arrivals]] #1", "rate")


def test_rates_over_long_windows_asking_for_too_many_irps_are_refused(tmp_path, capsys):
    sc = _scenario(tmp_path, "rate = 1000000", trace="duration = '10s'")
    line = _refused(tmp_path, capsys, sc, "10,000,000 IRPs", "at most 2,000,000")
    assert "[[arrivals]]" in line
    _refused(tmp_path, capsys, _scenario(tmp_path, trace="duration = '90000s'"), "duration",
             "86400s")


@pytest.mark.parametrize("mix, words", [
    ("{ read = -1, write = 2 }", ("mix weight read", "between 0")),
    ("{ read = 0 }", ("mix needs a positive weight",)),
    ("{ read = 1e300, write = 1 }", ("mix weight read",)),
    ("{ read = nan }", ("mix read", "finite")),
])
def test_bad_mix_weights_are_refused(tmp_path, capsys, mix, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, f"rate = 100\nmix = {mix}"), *words)


@pytest.mark.parametrize("arrivals, trace, words", [
    ("rate = 100\nsizes = [4294967296]", "duration = '1s'", ("sizes",)),
    ("rate = 100\nthreads = 99999999999", "duration = '1s'", ("threads",)),
    ("rate = 100", "duration = '1s'\nlost_events = 9223372036854775807", ("lost_events",)),
    ("rate = 100", "duration = '1s'\ncpus = 100000", ("cpus",)),
])
def test_counts_out_of_range_are_refused(tmp_path, capsys, arrivals, trace, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, arrivals, trace), *words)


@pytest.mark.parametrize("where", ["queue", "truth"])
def test_an_examine_rule_cannot_reach_a_file(tmp_path, capsys, monkeypatch, where):
    """The vetter the engine uses (fpreplay.examine_rule) refuses a table function before polars
    sees the rule, in a queue's policy and in [truth] policies alike."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"a": 1}')
    monkeypatch.chdir(tmp_path)
    rule = "examine:8:(SELECT count(*) FROM read_json('secret.json')) > 0"
    text = _scenario(tmp_path).read_text()
    if where == "queue":
        text = text.replace("policy = 'always:2'", f'policy = "{rule}"')
    else:
        text += f'[truth]\npolicies = ["{rule}"]\n'
    sc = tmp_path / "sc.toml"
    sc.write_text(text)
    opened = []
    real_open = open

    def spy(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    line = _refused(tmp_path, capsys, sc, "examine rule", "is not allowed")
    assert "secret" not in " ".join(opened)
    assert "{" not in line.split("is not allowed")[1]      # nothing of the file is shown


def test_the_scenario_and_the_engine_share_one_vetter():
    """One vetter in the contract layer: synth and engine refuse a rule in the same words."""
    import fpreplay.examine_rule as vetter
    from fpreplay.engine import parse_policy

    assert scenario_mod.vet_examine_rule is vetter.vet_examine_rule
    rule = "examine:1:read_parquet('x') IS NULL"
    with pytest.raises(ConfigError) as synth_error:
        scenario_mod.Policy.parse(rule, "here")
    with pytest.raises(ConfigError) as engine_error:
        parse_policy(rule)
    why = "bad examine SQL \"read_parquet('x') IS NULL\": function READ_PARQUET is not allowed"
    assert why in str(synth_error.value) and why in str(engine_error.value)


def test_synth_writes_atomically(tmp_path, capsys, monkeypatch):
    """A full disk mid-trace leaves the previous trace as it was and no temporary file; exit 2
    with one line."""
    sc = _scenario(tmp_path)
    out = tmp_path / "t.etl"
    out.write_bytes(b"previous trace")
    from fpreplay.synth import emit

    def full(sim, path, name=None):
        with open(path, "wb") as fh:
            fh.write(b"half a trace")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(emit, "write_etl", full)
    code = main(["synth", str(sc), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(out) in err and "No space left on device" in err
    assert out.read_bytes() == b"previous trace"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.toml", "t.etl"]


def test_synthesize_never_writes_over_its_scenario(tmp_path):
    sc = _scenario(tmp_path)
    before = sc.read_bytes()
    for kwargs in ({"output": sc}, {"output": tmp_path / "t.etl", "truth": sc},
                   {"output": tmp_path / "t.etl", "ifr": sc}):
        with pytest.raises(FpreplayError, match="is the scenario"):
            synthesize(sc, **kwargs)
        assert sc.read_bytes() == before
    # A complete run leaves the trace and truth, and no temporary file.
    synthesize(sc, tmp_path / "t.etl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.toml", "t.etl", "t.truth.json"]


def test_no_step_of_reading_a_scenario_is_over_80_lines():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(scenario_mod))
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.end_lineno - f.lineno + 1 > 80]
    assert not long, long
