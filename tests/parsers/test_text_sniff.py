"""Text that is none of the formats fpreplay reads is refused in one line, never misread."""

from __future__ import annotations

import pytest

from conftest import real_trace
from fpreplay.errors import InputError
from fpreplay.parsers import ReadOptions, read_inputs


@pytest.mark.parametrize("name", [
    "etwanalyzer_wpa_Disk_Usage_Utilization_by_Disk.csv",      # WPA aggregate table: no IRPs
    "perfview_net.4.5.2.x64.LogFile.txt",
    "perfview_baselines/net.4.5.2.x86.baseline.txt",
    "wpp_tmf/5bf6e80b-6122-3dde-7c2d-419eb7880414.tmf",         # a TMF is not a trace
])
def test_real_text_of_other_kinds_is_refused(name):
    path = real_trace(f"text/{name}")
    with pytest.raises(InputError) as e:
        read_inputs([path], ReadOptions())
    assert str(path) in str(e.value) and "\n" not in str(e.value)
