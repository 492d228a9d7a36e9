"""Emissions -> bytes: the .etl records in per-CPU buffers, and the IFR text dump.

Per IRP the trace shows what a storage stack with this KMDF driver shows (etw-formats.md 2.2-2.4):
dispatch = DiskIo ReadInit/WriteInit/FlushInit (issuing thread) + DrvMjFnCall (the only kernel
event with the major function); completion = DrvComplReq + DiskIo Read/Write/FlushBuffers
(PERFINFO header, IrpFlags with the priority bits, response time). The driver's TraceLogging
events come between them. With the "fileio" family, each read/write also has the file system's
IRP above it (its own address): FileIo Read/Write when issued, FileIo OpEnd with the NTSTATUS
the disk IRP's failure or success propagated up - the only kernel event carrying a status. With
the "opend" family, an OpEnd names the driver's IRP itself.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpreplay.schema import IRP_MJ_FLUSH_BUFFERS, IRP_MJ_WRITE
from fpreplay.synth import records as R
from fpreplay.synth import wpp as W
from fpreplay.synth.etlwriter import EtlWriter
from fpreplay.synth.model import Emission, Simulation, kernel_record_written

T0_RAW = 0x0000_0028_84D0_BFA2     # QPC ticks since boot at the trace start (about 4.8 hours)
PERF_FREQ = 10_000_000
COMPLETION_WHATS = {"drv_compl", "diskio_done", "fileio_end", "opend", "tl:IrpComplete"}


def raw(ts_ns: int) -> int:
    return T0_RAW + ts_ns * PERF_FREQ // 1_000_000_000


def _record(e: Emission, provider: str, kernel: set[str]) -> bytes | None:
    irp = e.irp
    ts = raw(e.ts_ns)
    w = e.what
    if w.startswith("tl:"):
        return R.tracelogging_event(ts, irp.tid if irp else 4, irp.pid if irp else 4,
                                    provider=provider, name=w[3:], values=e.values)
    if not kernel_record_written(w, irp.major, kernel):
        return None
    if w == "diskio_init":
        return R.diskio_init(ts, irp.tid, irp.pid, write=irp.major == IRP_MJ_WRITE, irp=irp.addr,
                             flush=irp.major == IRP_MJ_FLUSH_BUFFERS)
    if w == "drv_call":
        return R.drv_mj_fn_call(ts, irp.tid, irp.pid, major=irp.major, minor=irp.minor,
                                routine=irp.device.dispatch_routine, file_object=irp.file_object,
                                irp=irp.addr, match_id=irp.match_id)
    if w == "drv_compl":
        return R.drv_compl_req(ts, 0, 0, routine=irp.device.dispatch_routine, irp=irp.addr,
                               match_id=irp.match_id)
    if w == "diskio_done":
        ticks = max(1, raw(e.ts_ns) - raw(irp.arrive_ns))
        flags = irp.flags | (irp.priority << 17)
        if irp.major == IRP_MJ_FLUSH_BUFFERS:
            return R.diskio_flush_complete(ts, irp=irp.addr, disk=irp.device.disk,
                                           irp_flags=flags, response_ticks=ticks, tid=irp.tid)
        return R.diskio_complete(ts, write=irp.major == IRP_MJ_WRITE, irp=irp.addr,
                                 disk=irp.device.disk, irp_flags=flags, size=irp.size,
                                 offset=irp.offset, file_object=irp.file_object,
                                 response_ticks=ticks, tid=irp.tid)
    if w == "fileio_op":
        return R.fileio_rw(ts, irp.tid, irp.pid, write=irp.major == IRP_MJ_WRITE, irp=irp.fs_addr,
                           file_object=irp.file_object, file_key=irp.file_object,
                           offset=irp.offset, size=irp.size, io_flags=irp.flags)
    if w in ("fileio_end", "opend"):
        # OpEnd of the file system's IRP above ("fileio"), or naming the driver's IRP ("opend")
        info = irp.size if irp.status == 0 else 0
        return R.fileio_opend(ts, 0, 0, irp=irp.fs_addr if w == "fileio_end" else irp.addr,
                              info=info, status=irp.status)
    raise ValueError(f"unknown emission {w}")


def write_etl(sim: Simulation, path: Path, name: str | None = None) -> dict:
    """Write the trace; return counts (records, events_lost, buffers) for the truth. `name`:
    the file name the trace header states (default: `path`'s; a temporary file's final name)."""
    sc = sim.sc
    emissions = sorted((e for e in sim.emissions if e.what != "ifr" or sc.wpp),
                       key=lambda e: (e.ts_ns, e.seq))
    wpp_sequence = 0
    counts = {"records": 0, "events_lost": 0, "by_what": {}}
    with open(path, "wb") as fh:
        w = EtlWriter(fh, start_unix_ns=sc.start_unix_ns, t0_raw=T0_RAW, perf_freq=PERF_FREQ,
                      ncpu=sc.cpus, buffer_size=sc.buffer_size, compressed=sc.compressed,
                      logger_name="FpReplay Synth", log_file_name=name or Path(path).name)
        for e in emissions:
            if e.what == "ifr":
                if e.irp is not None and e.irp.completion_lost and e.values["key"] == "completing":
                    continue
                wpp_sequence += 1
                rec = W.wpp_record(e.values["key"], e.values["args"], ts_raw=raw(e.ts_ns),
                                   sequence=wpp_sequence, tid=e.irp.tid if e.irp else 4,
                                   pid=e.irp.pid if e.irp else 4)
                w.write(e.cpu, raw(e.ts_ns), rec)
                counts["by_what"]["wpp"] = counts["by_what"].get("wpp", 0) + 1
                continue
            rec = _record(e, sc.provider, sc.kernel)
            if rec is None:
                continue
            if e.irp is not None and e.irp.completion_lost and e.what in COMPLETION_WHATS:
                w.lose(e.cpu)
                counts["events_lost"] += 1
                continue
            w.write(e.cpu, raw(e.ts_ns), rec)
            key = e.what if not e.what.startswith("tl:") else e.what
            counts["by_what"][key] = counts["by_what"].get(key, 0) + 1
        w.close()
        counts["records"] = w.records
        counts["buffers"] = w.buffers_written
        counts["buffers_flagged_lost"] = w.buffers_flagged_lost
    return counts


def _ifr_time(unix_ns: int) -> str:
    dt = datetime.fromtimestamp(unix_ns // 1_000_000_000, tz=timezone.utc)
    frac = (unix_ns % 1_000_000_000) // 100
    return dt.strftime("%m/%d/%Y-%H:%M:%S") + f".{frac:07d}"


def write_ifr(sim: Simulation, path: Path, driver: str = "stordrv") -> int:
    """The `!wdfkd.wdflogdump` text of the run (times in UTC, the target's zone here)."""
    sc = sim.sc
    lines = sorted((e for e in sim.emissions if e.what == "ifr"), key=lambda e: (e.ts_ns, e.seq))
    lines = [e for e in lines if not (e.irp is not None and e.irp.completion_lost
                                      and e.values["key"] == "completing")]
    body = []
    for n, e in enumerate(lines, start=1):
        func, _, msg = W.render(e.values["key"], e.values["args"]).partition(" - ")
        body.append(f"{n}: {_ifr_time(sc.start_unix_ns + e.ts_ns)} {func} - {msg}")
    head = [
        "Trace searchpath is: C:\\symbols",
        "Trace format prefix is: %7!u!: %4!s! %!FUNC! - ",
        "Trying to extract TMF information from - C:\\symbols\\Wdf01000.pdb",
        f"Gather log: Please wait, this may take a moment (reading {len(body) * 64} bytes).",
        "% read so far ... 100",
        f"There are {len(body)} log entries",
        "--- start of log ---",
    ]
    text = "\n".join(head + body + ["---- end of log ----", ""])
    Path(path).write_text(text, encoding="utf-8", newline="\n")
    return len(body)
