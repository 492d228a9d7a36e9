"""Who logged a record: the kernel's HookId groups and their provider GUIDs (etw-formats.md
section 2.1), and the reader's snapshot of the decoder registries keyed by raw header bytes."""

from __future__ import annotations

import struct
import uuid

# HookId group -> (name, GUID) for kernel events.
KERNEL_GROUPS: dict[int, tuple[str, str]] = {
    0x00: ("EventTrace", "68fdd900-4a3e-11d1-84f4-0000f80464e3"),
    0x01: ("DiskIo", "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c"),
    0x02: ("PageFault", "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c"),
    0x03: ("Process", "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c"),
    0x04: ("FileIo", "90cbdc39-4a3e-11d1-84f4-0000f80464e3"),
    0x05: ("Thread", "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c"),
    0x06: ("TcpIp", "9a280ac0-c8e0-11d1-84e2-00c04fb998a2"),
    0x08: ("UdpIp", "bf3a50c5-a9c9-4988-a005-2df0b7c80f80"),
    0x09: ("Registry", "ae53722e-c863-11d2-8659-00c04fa321a1"),
    0x0B: ("SystemConfig", "01853a65-418f-4f36-aefc-dc0f1d2fd235"),
    0x0E: ("Pool", "0268a8b6-74fd-4302-9dd0-6e8f1795c0cf"),
    0x0F: ("PerfInfo", "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc"),
    0x14: ("Image", "2cb15d1d-5fc1-11d2-abe1-00a0c911f518"),
    0x16: ("CC", "7687a439-f752-45b8-b741-321aec0f8df9"),
    0x18: ("StackWalk", "def2fe46-7bd6-4b80-bd94-f57fe20d0ce3"),
    0x1B: ("SplitIo", "d837ca92-12b9-44a5-ad6a-3a65b3578aa8"),
}
_IMAGE_GUID = KERNEL_GROUPS[0x14][1]
KERNEL_UUIDS = {guid: uuid.UUID(guid) for _, guid in KERNEL_GROUPS.values()}

HEADER_SENTINEL = object()      # marks HookId 0 (EventTrace/Header) in the kernel lookup


def kernel_provider(hook: int) -> str | None:
    group = hook >> 8
    if group == 0x03 and hook & 0xFF == 10:
        return _IMAGE_GUID       # Process/10 is reported under the Image GUID (sechost legacy)
    entry = KERNEL_GROUPS.get(group)
    return entry[1] if entry else None


def kernel_event(hook: int) -> tuple[str | None, str]:
    """(provider GUID, event name) of a kernel HookId: 0x010A -> (DiskIo's GUID, 'DiskIo/10');
    unknown groups by number ('Kernel0x1f/3'). Remembered per HookId (at most 65,536)."""
    known = _KERNEL_EVENTS.get(hook)
    if known is None:
        group = hook >> 8
        entry = KERNEL_GROUPS.get(group)
        known = _KERNEL_EVENTS[hook] = (
            kernel_provider(hook), f"{entry[0] if entry else f'Kernel{group:#04x}'}/{hook & 0xFF}")
    return known


_KERNEL_EVENTS: dict[int, tuple[str | None, str]] = {}


class Registry:
    """A snapshot of the decoder registries keyed by raw bytes, so lookups cost no conversions:
    kernel by HookId, manifest by provider GUID bytes + event id, classic by (GUID bytes, Type)."""

    def __init__(self):
        from fpreplay.parsers.etl import decoders as D

        self.kernel = {(g << 8) | o: dec for (g, o), dec in D.KERNEL.items()}
        self.kernel_user_header = self.kernel.get(0)
        self.kernel[0] = HEADER_SENTINEL
        self.manifest = {uuid.UUID(g).bytes_le + struct.pack("<H", i): dec
                         for (g, i), dec in D.MANIFEST.items()}
        self.classic = {(uuid.UUID(g).bytes_le, t): dec for (g, t), dec in D.CLASSIC.items()}
        self.tracelogging = D.TRACELOGGING
        self.wpp = D.WPP
        self._guids: dict[bytes, str] = {}
        self._uuids: dict[bytes, uuid.UUID] = {}

    def guid(self, raw: bytes) -> str:
        s = self._guids.get(raw)
        if s is None:
            s = self._guids[raw] = str(uuid.UUID(bytes_le=raw))
        return s

    def uuid(self, raw: bytes) -> uuid.UUID:
        u = self._uuids.get(raw)
        if u is None:
            u = self._uuids[raw] = uuid.UUID(bytes_le=raw)
        return u
