"""A driver config from a colleague or a customer is checked, never trusted (issue 12): every
malformed file is a ConfigError naming the file, never a crash or a silently ignored table."""

from __future__ import annotations

import time

import pytest

from fpreplay.engine import load_driver_model
from fpreplay.errors import ConfigError


@pytest.mark.parametrize("text, says", [
    ("driver = 5\n", "'driver' must be a table"),
    ("instrumentation = 5\n", "'instrumentation' must be a table"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("[driver]\nqueues = 5\n", "unknown key(s) in [driver]: queues"),
    ("[[driver.queues]]\nname = 'io'\n", "unknown key(s) in [driver]: queues"),
    ("queues = 5\n", "'queues' must be an array of tables"),
    ("[[queues]]\nname = 3\n", "every queue needs a name"),
    ("[[queues]]\nname = 'io'\npolicy = 8\n", "policy must be a string"),
    ("[[queues]]\nname = 'io'\nmajors = ['NOPE']\n", "NOPE"),
    ("\xff\xfe not text", "not valid TOML"),
])
def test_malformed_configs_are_one_clear_error(tmp_path, text, says):
    path = tmp_path / "driver.toml"
    path.write_bytes(text.encode("latin-1"))
    started = time.perf_counter()
    with pytest.raises(ConfigError) as raised:
        load_driver_model(path)
    assert time.perf_counter() - started < 5
    message = str(raised.value)
    assert str(path) in message and says in message, message
    assert "\n" not in message
