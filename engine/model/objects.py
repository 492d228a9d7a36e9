"""The framework's objects the queue model moves around: the IRP, the request (normal or a
reserved pool member), the driver's forward-progress policy structure and the queue's
forward-progress context (forward-progress.md section 2)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from fpreplay.schema import IRP_MJ_READ

from ..policies import ReservePolicy
from ..status import ACTION_USE_RESERVED, FP_POLICY_STRUCT_SIZE, WDF_QUEUE_FATAL_ERROR, WDF_VIOLATION

SEQUENTIAL, PARALLEL, MANUAL = "sequential", "parallel", "manual"
UNLIMITED = 0xFFFFFFFF


class BugCheck(Exception):
    """WDF_VIOLATION (0x10D) with parameter 1 = WDF_QUEUE_FATAL_ERROR: a failed Stop/Purge/Drain."""

    def __init__(self, status: int):
        self.code, self.parameter1, self.status = WDF_VIOLATION, WDF_QUEUE_FATAL_ERROR, status
        super().__init__(f"bugcheck 0x{WDF_VIOLATION:X} param1 0x{WDF_QUEUE_FATAL_ERROR:X} "
                         f"status 0x{status:08X}")


class Irp:
    """One IRP instance plus the replay inputs the model needs (section 9.2 ARRIVE)."""

    __slots__ = ("id", "major", "minor", "flags", "file", "length", "cancel", "alloc_ok",
                 "verdict", "status", "done", "fate", "location", "request", "parked")

    def __init__(self, id, major=IRP_MJ_READ, *, minor=0, flags=0, file=None, length=None,
                 cancel=False, alloc_ok=True, verdict=ACTION_USE_RESERVED):
        self.id = id
        self.major, self.minor, self.flags = major, minor, flags
        self.file, self.length = file, length
        self.cancel = cancel
        self.alloc_ok = alloc_ok
        self.verdict = verdict          # Examine value when a VerdictPolicy is in use
        self.status = None              # final completion status
        self.done = False
        self.fate = None                # who completed it: "driver", "refused", "cancelled", ...
        self.location = None            # ("parked", Q) | ("main", Q) | None
        self.request = None
        self.parked = False             # was parked at some time

    def __repr__(self):
        return f"Irp({self.id!r})"


class Request:
    """A framework request object; `reserved` ones are pool members (never change)."""

    __slots__ = ("id", "reserved", "owner", "current_queue", "presented", "completed",
                 "canceled", "owned", "irp", "in_presentation", "recycle_deferred",
                 "cancelable", "cancel_routine", "index")

    def __init__(self, id, reserved, owner, queue, irp=None, index=None):
        self.id = id
        self.reserved = reserved
        self.owner = owner              # fp_owner: the queue whose pool it belongs to
        self.current_queue = queue
        self.presented = False
        self.completed = False
        self.canceled = False
        self.owned = False              # completion state QUEUE: driver-owned on current_queue
        self.irp = irp
        self.in_presentation = False
        self.recycle_deferred = False
        self.cancelable = False
        self.cancel_routine = None
        self.index = index              # pool index (creation order) for reserved requests

    @property
    def is_reserved(self) -> bool:      # WdfRequestIsReserved
        return self.reserved

    def __repr__(self):
        return f"Request({self.id!r}{', reserved' if self.reserved else ''})"


@dataclass
class ForwardProgressPolicy:
    """WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY as the driver fills it in."""

    total: int
    policy: int = 1
    examine: Callable | None = None                 # EvtIoWdmIrpForForwardProgress
    reserved_resources: Callable | None = None      # EvtIoAllocateResourcesForReservedRequest
    request_resources: Callable | None = None       # EvtIoAllocateRequestResources
    size: int = FP_POLICY_STRUCT_SIZE
    strategy: ReservePolicy | None = None           # overrides the enum-derived strategy


class FpContext:
    __slots__ = ("n", "strategy", "req_res_cb", "reserved_res_cb", "free", "in_use", "parked",
                 "members", "high_water")

    def __init__(self, n, strategy, req_res_cb, reserved_res_cb):
        self.n = n
        self.strategy = strategy
        self.req_res_cb = req_res_cb
        self.reserved_res_cb = reserved_res_cb
        self.free: deque[Request] = deque()
        self.in_use: dict[Request, None] = {}       # insertion-ordered set
        self.parked: deque[Irp] = deque()
        self.members: list[Request] = []
        self.high_water = 0                          # most members in use at once
