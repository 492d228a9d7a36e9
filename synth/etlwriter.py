"""Writing the .etl container: per-CPU buffers, the header buffer, optional LZ77 Xpress compression.

What Windows writes (etw-formats.md section 1): no file header of its own, a chain of buffers each
starting with a WMI_BUFFER_HEADER; the first ("header") buffer holds EventTrace/Header with the
TRACE_LOGFILE_HEADER. Each CPU fills its own buffer and a buffer reaches the file when it is full,
so file order is not time order: a reader must merge by timestamp. Records are 8-byte aligned and
never cross a buffer; unused space is 0xFF. Compressed buffers (relogger style) store only
`[0x48, FilledBytes)` compressed, and their BufferSize is their length in the file.

The writer streams: at most one open buffer per CPU is in memory. The header buffer is rewritten
in place at `close()` once BuffersWritten, EndTime and EventsLost are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from fpreplay.parsers.etl import layouts as L
from fpreplay.synth.xpress import compress as xpress_compress

FILETIME_UNIX_EPOCH = 116444736000000000   # 1970-01-01 in 100-ns units since 1601
LOGGER_ID = 0x22


def unix_ns_to_filetime(ns: int) -> int:
    return FILETIME_UNIX_EPOCH + ns // 100


def _utc_time_zone() -> dict:
    st = dict(Year=0, Month=0, DayOfWeek=0, Day=0, Hour=0, Minute=0, Second=0, Milliseconds=0)
    name = "Coordinated Universal Time".encode("utf-16-le").ljust(64, b"\0")
    return dict(Bias=0, StandardName=name, StandardDate=st, StandardBias=0,
                DaylightName=name, DaylightDate=st, DaylightBias=0)


@dataclass(frozen=True)
class Session:
    """What the header buffer's TRACE_LOGFILE_HEADER says of the session that wrote the trace:
    its clock (`t0_raw` raw ticks at `start_unix_ns`, `perf_freq` ticks a second), its names and
    the machine's."""
    start_unix_ns: int
    t0_raw: int
    perf_freq: int = 10_000_000
    logger_name: str = "FpReplay Synth"
    log_file_name: str = "trace.etl"
    os_build: int = 19045
    boot_unix_ns: int | None = None     # None: booted an hour before the trace
    cpu_mhz: int = 2995

    def __post_init__(self):
        if self.boot_unix_ns is None:
            object.__setattr__(self, "boot_unix_ns", self.start_unix_ns - 3600 * 10**9)


class EtlWriter:
    """Append records per CPU in time order; `close()` finishes the file.

    `record` arguments are complete records (header + payload) without alignment padding. The
    keywords besides ncpu, buffer_size and compressed are the Session's.
    """

    def __init__(self, fh: BinaryIO, *, ncpu: int = 4, buffer_size: int = 0x10000,
                 compressed: bool = False, **session):
        if buffer_size % 8 or buffer_size < 0x400:
            raise ValueError("buffer size must be a multiple of 8 and at least 1 KiB")
        self.fh = fh
        self.ncpu = ncpu
        self.buffer_size = buffer_size
        self.compressed = compressed
        self.session = Session(**session)
        t0_raw = self.session.t0_raw
        self.sequence = 0
        self.buffers_written = 1          # the header buffer
        self.events_lost = 0
        self.buffers_flagged_lost = 0
        self.records = 1                  # the header record
        self.last_raw = t0_raw
        self._open: list[bytearray] = [bytearray() for _ in range(ncpu)]
        self._lost_flag = [False] * ncpu
        header_record = self._header_record(end_raw=t0_raw)
        # Relogged (compressed) files have a small header buffer; live files a full-size one.
        need = L.BUFFER_HEADER_SIZE + _align8(len(header_record))
        self.header_buffer_size = max(0x200, _round_up(need, 0x200)) if compressed else buffer_size
        if need > self.header_buffer_size:
            raise ValueError("logger/file names too long for the header buffer")
        fh.write(b"\0" * self.header_buffer_size)   # rewritten by close()

    # --- records ----------------------------------------------------------------------------
    def write(self, cpu: int, ts_raw: int, record: bytes) -> None:
        size = len(record)
        if size > self.buffer_size - L.BUFFER_HEADER_SIZE:
            raise ValueError(f"record of {size} bytes does not fit a buffer")
        buf = self._open[cpu]
        if L.BUFFER_HEADER_SIZE + len(buf) + size > self.buffer_size:
            self._flush(cpu, ts_raw)
            buf = self._open[cpu]
        buf += record
        pad = (-size) & 7
        if pad:
            buf += b"\0" * pad
        self.records += 1
        if ts_raw > self.last_raw:
            self.last_raw = ts_raw

    def lose(self, cpu: int, n: int = 1) -> None:
        """Events of `cpu` dropped here: counted in EventsLost, the buffer flagged EVENTS_LOST."""
        self.events_lost += n
        self._lost_flag[cpu] = True

    # --- buffers ----------------------------------------------------------------------------
    def _flush(self, cpu: int, flush_raw: int) -> None:
        data = bytes(self._open[cpu])
        self._open[cpu] = bytearray()
        if not data and not self._lost_flag[cpu]:
            return
        filled = L.BUFFER_HEADER_SIZE + len(data)
        flag = L.BUFFER_FLAG_PROC_INDEX
        if self._lost_flag[cpu]:
            flag |= L.BUFFER_FLAG_EVENTS_LOST
            self.buffers_flagged_lost += 1
            self._lost_flag[cpu] = False
        if self.compressed:
            body = xpress_compress(data)
            flag |= L.BUFFER_FLAG_COMPRESSED
            size = L.BUFFER_HEADER_SIZE + len(body)
        else:
            body = data + b"\xff" * (self.buffer_size - filled)
            size = self.buffer_size
        self.sequence += 1
        header = L.WMI_BUFFER_HEADER.build(dict(
            BufferSize=size, SavedOffset=filled, CurrentOffset=filled, ReferenceCount=0,
            TimeStamp=flush_raw, SequenceNumber=self.sequence, ClockTypeFrequency=0,
            ProcessorNumber=cpu & 0xFF, Alignment=(cpu >> 8) & 0x07, LoggerId=LOGGER_ID, State=3,
            FilledBytes=filled, BufferFlag=flag, BufferType=0, Padding=b"\0" * 16))
        self.fh.write(header)
        self.fh.write(body)
        self.buffers_written += 1

    def _header_record(self, end_raw: int) -> bytes:
        s = self.session
        end_ns = s.start_unix_ns + (end_raw - s.t0_raw) * 10**9 // s.perf_freq
        mode = 0x00000001 | (L.EVENT_TRACE_COMPRESSED_MODE if self.compressed else 0)
        logfile = dict(
            BufferSize=self.buffer_size,
            Version=0x0002000A,                   # Windows 10.0, log format 2.0
            ProviderVersion=s.os_build, NumberOfProcessors=self.ncpu,
            EndTime=unix_ns_to_filetime(end_ns), TimerResolution=156250, MaximumFileSize=0,
            LogFileMode=mode, BuffersWritten=self.buffers_written, StartBuffers=1,
            PointerSize=8, EventsLost=self.events_lost, CpuSpeedInMHz=s.cpu_mhz,
            LoggerNamePtr=0, LogFileNamePtr=0, TimeZone=_utc_time_zone(),
            BootTime=unix_ns_to_filetime(s.boot_unix_ns), PerfFreq=s.perf_freq,
            StartTime=unix_ns_to_filetime(s.start_unix_ns), ReservedFlags=L.CLOCK_QPC,
            BuffersLost=0)
        names = (s.logger_name.encode("utf-16-le") + b"\0\0"
                 + s.log_file_name.encode("utf-16-le") + b"\0\0")
        size = L.SYSTEM_TRACE_HEADER.sizeof() + L.TRACE_LOGFILE_HEADER64.sizeof() + len(names)
        header = L.SYSTEM_TRACE_HEADER.build(dict(
            Version=2, HeaderType=L.HT_SYSTEM64, MarkerFlags=L.MARKER_TRACE_HEADER, Size=size,
            HookId=0x0000, ThreadId=4, ProcessId=4, SystemTime=s.t0_raw,
            KernelTime=0, UserTime=0))
        return header + L.TRACE_LOGFILE_HEADER64.build(logfile) + names

    def close(self) -> None:
        for cpu in range(self.ncpu):
            self._flush(cpu, self.last_raw)
        end = self.fh.tell()
        record = self._header_record(self.last_raw)
        record += b"\0" * ((-len(record)) & 7)     # offsets stay 8-aligned, as the kernel's do
        filled = L.BUFFER_HEADER_SIZE + len(record)
        header = L.WMI_BUFFER_HEADER.build(dict(
            BufferSize=self.header_buffer_size, SavedOffset=filled, CurrentOffset=filled,
            ReferenceCount=0, TimeStamp=self.session.t0_raw, SequenceNumber=0, ClockTypeFrequency=0,
            ProcessorNumber=0, Alignment=0, LoggerId=LOGGER_ID, State=3, FilledBytes=filled,
            BufferFlag=L.BUFFER_FLAG_FLUSH_MARKER, BufferType=L.BUFFER_TYPE_HEADER,
            Padding=b"\0" * 16))
        block = header + record
        block += b"\xff" * (self.header_buffer_size - len(block))
        self.fh.seek(0)
        self.fh.write(block)
        self.fh.seek(end)


def _align8(n: int) -> int:
    return (n + 7) & ~7


def _round_up(n: int, k: int) -> int:
    return (n + k - 1) // k * k
