"""TMF loading and WPP message formatting (--tmf DIR)."""

from __future__ import annotations

import struct
import uuid

import pytest

from conftest import real_trace
from fpreplay.errors import InputError
from fpreplay.parsers.kmdf_messages import KmdfMessageStream
from fpreplay.parsers.wpp import load_tmf_dir
from fpreplay.parsers.wpp.tmf import format_printf

GUID = "1f0c3b5e-8a3d-4a52-9c1e-0123456789ab"
TMF = f"""// PDB:  Wdf01000.pdb
// PDB:  Last Updated :2024-11-22:04:49:12:000 (UTC) [tracepdb]
{GUID} Wdf01000 // SRC=fxrequest.cpp MJ= MN=
#typev fxrequest_cpp120 12 "%0Completing WDFREQUEST 0x%10!p! for IRP 0x%11!p! with Information 0x%12!I64x!, %13!s!" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACINGREQUEST FUNC=FxRequest::Complete
{{
GetHandle(), ItemPtr -- 10
m_Irp.GetIrp(), ItemPtr -- 11
Information, ItemULongLong -- 12
status, ItemNTSTATUS -- 13
}}
#typev fxrequest_cpp200 13 "%0%!FUNC!: state %10!s! count=%11!04X! who=%12!s! %%done" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=TRACINGIO FUNC=FxIoQueue::SetState
{{
state, ItemEnum(_WDF_IO_QUEUE_STATE) -- 10
n, ItemShort -- 11
name, ItemWString -- 12
}}
#enumv _WDF_IO_QUEUE_STATE 64
{{
WdfIoQueueAcceptRequests = 0x1
WdfIoQueueDispatchRequests = 2
}}
"""


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / f"{GUID}.tmf").write_text(TMF)
    return load_tmf_dir([tmp_path])


def test_real_tmf_loads_and_formats():
    cat = load_tmf_dir([real_trace("text/wpp_tmf")])
    args = struct.pack("<i", 7) + b"core-state\0" + struct.pack("<i", 0x50C0 + 7)
    msg = cat.format("5bf6e80b-6122-3dde-7c2d-419eb7880414", 10, args, 8)
    assert msg.text == "wpp probe seq=7 name=core-state value=0x50c7"
    assert (msg.function, msg.level, msg.component, msg.source_file) == ("main", "TEST_ALL", "wpp", "wpptest.c")
    assert msg.args == [7, "core-state", 0x50C7] and msg.complete


def test_kmdf_completion_formats_and_classifies(catalog):
    args = struct.pack("<QQQI", 0x3A77F9C19F68, 0xFFFFC58806B53B50, 0x1000, 0xC000009A)
    msg = catalog.format(uuid.UUID(GUID), 12, args, 8)
    assert msg.text == ("Completing WDFREQUEST 0x00003A77F9C19F68 for IRP 0xFFFFC58806B53B50 with "
                        "Information 0x1000, STATUS_INSUFFICIENT_RESOURCES")
    assert (msg.function, msg.level, msg.flags) == ("FxRequest::Complete", "TRACE_LEVEL_VERBOSE", "TRACINGREQUEST")
    hit = KmdfMessageStream().classify(msg.text)
    assert hit.kind == "irp_complete"
    assert hit.fields == {"irp": 0xFFFFC58806B53B50, "request": 0x3A77F9C19F68, "bytes": 0x1000,
                          "status": 0xC000009A}


def test_pointer_width_enum_short_wstring_func_and_percent(catalog):
    args = struct.pack("<I", 2) + struct.pack("<h", 0x2A) + "q1".encode("utf-16-le") + b"\0\0"
    msg = catalog.format(GUID, 13, args, 4)
    assert msg.text == "FxIoQueue::SetState: state WdfIoQueueDispatchRequests count=002A who=q1 %done"
    a32 = struct.pack("<IIQI", 0x1234, 0x89ABCDEF, 0, 0)
    assert "WDFREQUEST 0x00001234 for IRP 0x89ABCDEF" in catalog.format(GUID, 12, a32, 4).text


def test_truncated_payload_and_unknown_message(catalog):
    msg = catalog.format(GUID, 12, struct.pack("<Q", 5), 8)
    assert not msg.complete and msg.text.endswith("<truncated>")
    assert catalog.format(GUID, 99, b"", 8) is None
    assert catalog.format(uuid.uuid4(), 12, b"", 8) is None


@pytest.mark.parametrize("spec,value,size,out", [
    ("d", 0xFFFFFFFF, 4, "-1"), ("u", -1, 4, "4294967295"), ("08x", 0xBEEF, 4, "0000beef"),
    ("I64X", 0xABC, 8, "ABC"), ("p", 0x10, 8, "0000000000000010"), ("c", 0x41, 1, "A"),
    ("s", "x", 0, "x"), ("#x", 255, 4, "0xff"),
])
def test_printf_specs(spec, value, size, out):
    assert format_printf(spec, value, size) == out


@pytest.mark.parametrize("with_guid,body,where", [
    (True, '#typev x 1 "%0a %10!d!" // FUNC=f\n{\n i, ItemLong -- 10\n', "line 4: block opened here"),
    (False, '#typev x 1 "%0a" // FUNC=f\n', "line 2: #typev before any message GUID"),
    (True, '#typev x one "%0a"\n', "line 3: expected '#typev"),
    (True, '{\n}\n', "line 3: '{' without"),
    (True, '#enumv E\n{\nA == 1\n}\n', "line 5: expected 'Name = value'"),
    (True, 'i, ItemLong -- 10\n', "line 3: expected a message GUID line"),
])
def test_bad_tmf_names_file_and_line(tmp_path, with_guid, body, where):
    bad = tmp_path / "bad.tmf"
    bad.write_text("// PDB: x\n" + (f"{GUID} comp // SRC=a.c\n" if with_guid else "") + body)
    with pytest.raises(InputError) as e:
        load_tmf_dir([bad])
    assert str(e.value).startswith(f"{bad}: {where}")


def test_empty_tmf_dir_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no .tmf files"):
        load_tmf_dir([tmp_path])


def test_network_guid_and_counted_string_items(tmp_path):
    guid = "0a0b0c0d-0000-4000-8000-000000000001"
    (tmp_path / "n.tmf").write_text(
        f"{guid} net // SRC=net.c\n"
        '#typev net_c1 1 "%0peer %10!s!:%11!d! id %12!s! tag %13!s! pid %14!u!" // LEVEL=4 FUNC=Connect\n'
        "{\n addr, ItemIPAddr -- 10\n port, ItemPort -- 11\n id, ItemGuid -- 12\n tag, ItemPString -- 13\n"
        " pid, ItemULong -- 14\n}\n")
    cat = load_tmf_dir([tmp_path])
    gid = uuid.UUID("12345678-9abc-def0-1122-334455667788")
    args = bytes([10, 0, 0, 7]) + struct.pack(">H", 445) + gid.bytes_le + struct.pack("<H", 3) + b"abc" \
        + struct.pack("<I", 4)
    msg = cat.format(guid, 1, args, 8)
    assert msg.text == f"peer 10.0.0.7:445 id {gid} tag abc pid 4" and msg.complete


def test_inline_lists_sets_and_unknown_types(tmp_path):
    guid = "0a0b0c0d-0000-4000-8000-000000000002"
    (tmp_path / "l.tmf").write_text(
        f"{guid} kmdf // SRC=fxpkgio.cpp\n"
        '#typev a 1 "%0%10!s! %11!s! %12!s!" // LEVEL=TRACE_LEVEL_VERBOSE FUNC=FxPkgIo::Dispatch\n'
        "{\n mj, ItemListByte(IRP_MJ_CREATE,IRP_MJ_CREATE_NAMED_PIPE,IRP_MJ_CLOSE,IRP_MJ_READ) -- 10\n"
        " f, ItemSetShort(A,B,C) -- 11\n s, ItemString -- 12\n}\n"
        '#typev b 2 "%0x=%10!d! y=%11!d!" // FUNC=f\n{\n x, ItemLong -- 10\n y, ItemMystery -- 11\n}\n')
    cat = load_tmf_dir([tmp_path])
    assert cat.format(guid, 1, bytes([3]) + struct.pack("<H", 5) + b"ok\0", 8).text == "IRP_MJ_READ A|C ok"
    cut = cat.format(guid, 1, bytes([3]) + struct.pack("<H", 5) + b"no end", 8)
    assert not cut.complete and cut.text.endswith("<truncated>")
    odd = cat.format(guid, 2, struct.pack("<ii", 1, 2), 8)
    assert not odd.complete and odd.text.endswith("<unknown argument type ItemMystery>")
    assert odd.text.startswith("x=1")
