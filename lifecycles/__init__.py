"""Events become IRP lifecycles (contract section 4), and lifecycles become low-memory incidents.

    build_lifecycles(events, diagnostics) -> fpreplay.irps/1 table      (build.py)
    read_lifecycles(stream) -> the same from a reader's batches, streamed (build.py)
    detect_incidents(events, irps) -> one row per low-memory incident     (incidents.py)

This layer reads the event table only; it imports no parser and no engine.
"""

from fpreplay.lifecycles.build import build_lifecycles, read_lifecycles
from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, INCIDENT_COLUMNS, detect_incidents

__all__ = ["build_lifecycles", "read_lifecycles", "detect_incidents", "DEFAULT_GAP_NS", "INCIDENT_COLUMNS"]
