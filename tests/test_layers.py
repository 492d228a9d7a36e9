"""The house's rules (docs/architecture.md), checked on the source itself: each top-level folder is
one layer that imports as `fpreplay.<folder>`, data flows one way, and rooms stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONTRACT = "fpreplay"
# Layer -> the layers it may import (besides itself and the contract). A layer is a top-level
# folder, or one of replay/'s three rooms. docs/architecture.md draws the same table.
MAY_IMPORT = {
    "fpreplay": set(),
    "parsers": set(),
    "lifecycles": set(),
    "engine": set(),
    "synth": {"parsers"},                   # it writes with the parsers' layout declarations
    "replay.whatif": {"lifecycles", "engine"},
    "replay.render": {"lifecycles", "engine", "replay.whatif"},
    "replay.batch": {"parsers", "lifecycles", "engine", "replay.whatif"},
    # The library (replay/api.py): the top layer beside the CLI, over every layer below.
    "replay.api": {"parsers", "lifecycles", "engine", "replay.whatif", "replay.render",
                   "replay.batch"},
    "replay.cli": {"parsers", "lifecycles", "engine", "replay.whatif", "replay.render",
                   "replay.batch", "replay.api", "synth"},
}
LAYER_FOLDERS = {name: ROOT / name.replace(".", "/") for name in MAY_IMPORT}
LAYER_FOLDERS["replay.api"] = ROOT / "replay" / "api.py"
# `import fpreplay` opens the library's front door (fpreplay.open, loaded on first use): the one
# import of a layer above the contract that the contract's package itself makes.
FRONT_DOOR = (("fpreplay", "__init__"), "replay.api")


def _modules(folder: Path):
    for path in [folder] if folder.is_file() else sorted(folder.rglob("*.py")):
        yield path, path.relative_to(ROOT).with_suffix("").parts


def _imported(path: Path, parts: tuple[str, ...]) -> set[str]:
    """Absolute `fpreplay.*` names a module imports, relative imports resolved."""
    package = [p for p in parts[:-1]] if parts[-1] != "__init__" else list(parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if parts[0] != "fpreplay":
                    base = ["fpreplay", *base]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names |= {f"{module}.{a.name}" for a in node.names}
    return {n for n in names if n == "fpreplay" or n.startswith("fpreplay.")}


def _layer_of(name: str) -> str | None:
    """The layer an imported name belongs to: 'fpreplay.replay.render.html' -> 'replay.render'."""
    rest = name.split(".")[1:]
    if not rest:
        return CONTRACT
    if rest[0] == "replay" and len(rest) > 1 and f"replay.{rest[1]}" in MAY_IMPORT:
        return f"replay.{rest[1]}"
    if rest[0] in MAY_IMPORT:
        return rest[0]
    if rest == ["replay"]:
        return None  # the package that holds the three rooms: `from fpreplay.replay import whatif`
    return CONTRACT  # fpreplay.schema, fpreplay.errors, ... and `from fpreplay import __version__`


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_layer_imports_only_what_it_may(layer):
    allowed = MAY_IMPORT[layer] | {layer, CONTRACT}
    wrong = []
    for path, parts in _modules(LAYER_FOLDERS[layer]):
        if parts == ("fpreplay", "__main__"):
            continue  # `python -m fpreplay` is the CLI's entry point
        for name in _imported(path, parts):
            used = _layer_of(name)
            if (parts, used) == FRONT_DOOR:
                continue
            if used is not None and used not in allowed:
                wrong.append(f"{path.relative_to(ROOT)} imports {name} ({used})")
    assert not wrong, "\n".join(wrong)


def test_each_folder_installs_under_its_own_name():
    """setup.py maps fpreplay.<folder> to <folder>/ for every layer, and the contract package
    plays no tricks with its __path__ (a checkout is used through `pip install -e .`)."""
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    for folder in ("parsers", "lifecycles", "engine", "replay", "synth"):
        assert f'"fpreplay.{folder}": "{folder}"' in setup
        assert (ROOT / folder / "__init__.py").is_file()
    init = (ROOT / "fpreplay" / "__init__.py").read_text(encoding="utf-8")
    assert "__path__" not in init


def test_the_front_door_is_opened_lazily():
    """fpreplay/__init__.py imports the library only inside a function (or for type checkers),
    so `import fpreplay` loads no layer (tests/replay/test_library.py checks it running)."""
    tree = ast.parse((ROOT / "fpreplay" / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(not (getattr(n, "module", "") or "").startswith("fpreplay.") for n in top)
