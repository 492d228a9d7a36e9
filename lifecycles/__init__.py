"""Events become IRP lifecycles (contract section 4), and lifecycles become low-memory incidents.

    build_lifecycles(events, diagnostics) -> fpreplay.irps/1 table      (build.py)
    read_lifecycles(stream) -> the same from a reader's batches, streamed (build.py)
    read_lifecycles_spooled(stream) -> the same in an IrpSpool, read back in chunks (spool.py)
    detect_incidents(events, irps) -> one row per low-memory incident     (incidents.py)

This layer reads the event table only; it imports no parser and no engine.
"""

from fpreplay.lifecycles.build import build_lifecycles, read_lifecycles, read_lifecycles_spooled
from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, INCIDENT_COLUMNS, detect_incidents
from fpreplay.lifecycles.spool import IrpSpool

__all__ = ["build_lifecycles", "read_lifecycles", "read_lifecycles_spooled", "IrpSpool",
           "detect_incidents", "DEFAULT_GAP_NS", "INCIDENT_COLUMNS"]
