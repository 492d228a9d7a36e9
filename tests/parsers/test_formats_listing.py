"""`fpreplay formats` lists what sniff() recognises: every reader has its entry, every sample is
recognised as a listed format, and a WPA export is refused for the reason the listing gives."""

from __future__ import annotations

import pytest

from fpreplay.errors import InputError
from fpreplay.parsers import formats
from conftest import SAMPLES, real_trace


def test_every_reader_is_listed_once():
    listed = [f.name for f in formats.FORMATS if f.name]
    assert sorted(listed) == sorted(formats.READERS)
    assert all(f.title and f.recognised_by and f.yields for f in formats.FORMATS)


@pytest.mark.parametrize("sample", ["b-pool-ran-dry/trace.etl", "c-purge-during-incident/ifr.txt"])
def test_samples_are_recognised_as_a_listed_format(sample):
    assert formats.sniff(SAMPLES / sample) in {f.name for f in formats.FORMATS if f.name}


def test_real_wpa_disk_usage_export_is_refused_naming_the_format():
    path = real_trace("text/etwanalyzer_wpa_Disk_Usage_Utilization_by_Disk.csv")
    with pytest.raises(InputError) as e:
        formats.sniff(path)
    text = str(e.value)
    assert "Windows Performance Analyzer" in text and "Disk Usage" in text
    assert "no IRP address" in text and e.value.offset == 0


def test_a_csv_with_units_but_an_irp_column_is_not_called_a_wpa_export(tmp_path):
    """The refusal is for tables with no IRP; one that names its IRPs is not refused as WPA."""
    p = tmp_path / "t.csv"
    p.write_text("Irp,IO Time (µs),Size (B),Complete Time (s)\n0xffff1,5.1,4096,1.2\n")
    with pytest.raises(InputError) as e:
        formats.sniff(p)
    assert "Windows Performance Analyzer" not in str(e.value)
