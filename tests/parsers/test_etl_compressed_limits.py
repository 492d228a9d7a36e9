"""A .gz or .zip holding more trace than can be read safely is refused in one line (exit 2),
never an abort inside polars (issue 12: 3 GiB of valid buffers in a .gz ran 242 s and aborted).
The limit is parsers.etl.stream.MAX_DECOMPRESSED_BYTES (2 GiB); the tests lower it, so that
small generated inputs stand for large ones."""

from __future__ import annotations

import gzip
import zipfile

import pytest

from conftest import measured, real_trace
from fpreplay.parsers.etl import stream
from fpreplay.replay.cli import main

TRACE = "etl/filtrace_diskio.etl"          # 727 KB, 11,096 records


def _one_line_exit_2(capsys, path, tmp_path) -> str:
    code, seconds, peak = measured(lambda: main(["analyze", str(path), "-q"]))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and "compressed trace too large to read" in lines[0]
    assert "decompress it and give the .etl" in lines[0]
    assert seconds < 30 and peak < 200 << 20, (seconds, peak)
    return lines[0]


def test_a_gzip_that_claims_3_gib_is_refused_before_reading(tmp_path, capsys):
    """A small .gz whose trailer says 3 GiB: refused from the trailer, nothing decompressed."""
    data = bytearray(gzip.compress(real_trace(TRACE).read_bytes()))
    data[-4:] = (3 << 30).to_bytes(4, "little")
    p = tmp_path / "claims.etl.gz"
    p.write_bytes(bytes(data))
    line = _one_line_exit_2(capsys, p, tmp_path)
    assert "its gzip trailer says 3,221,225,472 bytes" in line and "byte 0" in line


@pytest.mark.parametrize("container", ["gz", "gz-lying-trailer", "zip"])
def test_more_trace_than_the_limit_is_one_line(tmp_path, capsys, monkeypatch, container):
    """Decompressed bytes are counted as they come: a trailer or directory that understates
    them does not help."""
    monkeypatch.setattr(stream, "MAX_DECOMPRESSED_BYTES", 256 << 10)
    src = real_trace(TRACE).read_bytes()
    p = tmp_path / f"big.etl.{container.split('-')[0]}"
    if container == "zip":
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("big.etl", src)
    else:
        data = bytearray(gzip.compress(src))
        if container == "gz-lying-trailer":
            data[-4:] = (1000).to_bytes(4, "little")
        p.write_bytes(bytes(data))
    line = _one_line_exit_2(capsys, p, tmp_path)
    if container == "gz-lying-trailer":
        assert "more than 262,144 bytes" in line and "byte " in line


def test_under_the_limit_reads_as_before(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(stream, "MAX_DECOMPRESSED_BYTES", 1 << 20)
    p = tmp_path / "ok.etl.gz"
    p.write_bytes(gzip.compress(real_trace(TRACE).read_bytes()))
    assert main(["events", str(p), "--all", "-o", str(tmp_path / "e.parquet"), "-q"]) == 0
