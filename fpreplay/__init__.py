"""fpreplay: what a driver's I/O did under low memory, and what it would have done under another
KMDF forward-progress policy.

As a library (docs/library.md):

    import fpreplay
    trace = fpreplay.open("trace.etl")            # nothing is read yet
    trace.compare(["always:8", "paging:8"])       # a polars DataFrame, one row per policy

`open`, `Trace` and `Recommendation` live in fpreplay.replay.api and are imported the first time
they are used, so `import fpreplay` (and `fpreplay --version`) loads no polars and no layer.

Data flows one way: parsers (fpreplay.parsers) -> events (fpreplay.schema, contract section 3)
-> lifecycles (fpreplay.lifecycles, section 4) -> engine (fpreplay.engine) -> what-if and reports
(fpreplay.replay). Each top-level folder of the checkout is one layer and imports as
`fpreplay.<folder>`; docs/architecture.md says what each owns and may import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["open", "Trace", "Recommendation", "__version__"]

_API = ("open", "Trace", "Recommendation")

if TYPE_CHECKING:
    from fpreplay.replay.api import Recommendation, Trace, open


def __getattr__(name: str) -> Any:
    """The library's front door, imported on first use (PEP 562)."""
    if name in _API:
        from fpreplay.replay import api

        return getattr(api, name)
    raise AttributeError(f"module 'fpreplay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
