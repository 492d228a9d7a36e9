"""fpreplay: what a driver's I/O did under low memory, and what it would have done under another
KMDF forward-progress policy.

Data flows one way: parsers (fpreplay.parsers) -> events (fpreplay.schema, contract section 3)
-> lifecycles (fpreplay.lifecycles, section 4) -> engine (fpreplay.engine) -> reports
(fpreplay.replay). The engine imports no parser; parsers import no engine.
"""

__version__ = "0.1.0"
