"""Forward-progress policies as injected strategy objects (forward-progress.md section 4.2 step A).

The queue model asks its strategy for an action only on the reserved path (after a failed
allocation or a failed EvtIoAllocateRequestResources), exactly once per arriving IRP.
"""

from __future__ import annotations

from typing import Callable

from fpreplay.schema import IRP_MJ_FILE_SYSTEM_CONTROL, IRP_PAGING_IO

from .status import (ACTION_FAIL, ACTION_USE_RESERVED, POLICY_ALWAYS, POLICY_EXAMINE,
                     POLICY_PAGING)


def is_paging_io(flags: int | None, major: int | None) -> bool:
    """The framework's own test: flag 0x2 set and not IRP_MJ_FILE_SYSTEM_CONTROL (section 4.3)."""
    return bool((flags or 0) & IRP_PAGING_IO) and major != IRP_MJ_FILE_SYSTEM_CONTROL


class ReservePolicy:
    """Base strategy: `code` is the WDF enum value stored at assignment."""

    code = 0
    name = "invalid"

    def action(self, queue, irp) -> int:
        # Invalid/out-of-range enum: the free build leaves the action Invalid, which is not Fail,
        # so the IRP gets a reserved request (section 3.1, case 9).
        return ACTION_USE_RESERVED


class InvalidPolicy(ReservePolicy):
    def __init__(self, code: int = 0):
        self.code = code


class AlwaysUseReserved(ReservePolicy):
    code = POLICY_ALWAYS
    name = "always"

    def action(self, queue, irp) -> int:
        return ACTION_USE_RESERVED


class PagingIoPolicy(ReservePolicy):
    code = POLICY_PAGING
    name = "paging"

    def action(self, queue, irp) -> int:
        return ACTION_USE_RESERVED if is_paging_io(irp.flags, irp.major) else ACTION_FAIL


class ExaminePolicy(ReservePolicy):
    """UseExamine: the driver's EvtIoWdmIrpForForwardProgress decides; its value is the action."""

    code = POLICY_EXAMINE
    name = "examine"

    def __init__(self, examine: Callable | None):
        self.examine = examine

    def action(self, queue, irp) -> int:
        queue.device.log.append(("examine", queue.name, irp.id))
        return self.examine(queue, irp)


class Precomputed(ReservePolicy):
    """Any policy whose action was computed for every IRP at once (the replay's vectorized path);
    the IRP carries its action in `verdict`. `code` keeps the enum for the invalid-value check."""

    def __init__(self, code: int, name: str):
        self.code, self.name = code, name

    def action(self, queue, irp) -> int:
        return irp.verdict


def strategy_for_code(code: int, examine: Callable | None) -> ReservePolicy:
    if code == POLICY_ALWAYS:
        return AlwaysUseReserved()
    if code == POLICY_PAGING:
        return PagingIoPolicy()
    if code == POLICY_EXAMINE:
        return ExaminePolicy(examine)
    return InvalidPolicy(code)
