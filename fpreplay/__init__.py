"""fpreplay: what a driver's I/O did under low memory, and what it would have done under another
KMDF forward-progress policy.

Data flows one way: parsers (fpreplay.parsers) -> events (fpreplay.schema, contract section 3)
-> lifecycles (fpreplay.lifecycles, section 4) -> engine (fpreplay.engine) -> what-if and reports
(fpreplay.replay). Each top-level folder of the checkout is one layer and imports as
`fpreplay.<folder>`; docs/architecture.md says what each owns and may import.
"""

__version__ = "0.1.0"
