"""fpreplay: what a driver's I/O did under low memory, and what it would have done under another
KMDF forward-progress policy.

Data flows one way: parsers (fpreplay.parsers) -> events (fpreplay.schema, contract section 3)
-> lifecycles (fpreplay.lifecycles, section 4) -> engine (fpreplay.engine) -> reports
(fpreplay.replay). The engine imports no parser; parsers import no engine.
"""

__version__ = "0.1.0"

# Run from a source checkout (`python3 -m pytest` puts the repo root first on sys.path), this
# folder shadows the installed package, whose parsers/engine/replay/synth subpackages are mapped
# from sibling folders (setup.py). Let those siblings resolve here too, so that the checkout and
# the installed package import the same way.
from pathlib import Path as _Path

_root = _Path(__file__).resolve().parent.parent
if (_root / "setup.py").is_file() and (_root / "parsers" / "__init__.py").is_file():
    __path__.append(str(_root))  # noqa: F821 - __path__ exists in a package's __init__
del _Path, _root
