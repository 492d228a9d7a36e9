"""Rooms stay small (docs/architecture.md): no module over 600 lines, no function over 80 lines
unless its docstring says why in a sentence that starts "Long because" (for example a hot loop
that a helper call per item would slow down).

Run as a script to list the offenders of the whole tree: `python tests/test_rooms.py`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE_LINES = 600
FUNCTION_LINES = 80
REASON = re.compile(r"(?:^|[.!?]\s+)Long because\b")
# "path name" of functions another change is splitting (remove the entry once it is split).
KNOWN_LONG: set[str] = set()


def python_files(root: Path = ROOT):
    """Every .py file of the tree, leaving out hidden folders, caches and build output."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p in ("build", "dist", "__pycache__") or p.endswith(".egg-info")
               for p in parts[:-1]):
            continue
        yield path


def rooms_too_big(root: Path = ROOT) -> tuple[list[str], dict[str, str]]:
    """Modules over MODULE_LINES as 'path: N lines', and functions over FUNCTION_LINES with no
    reason as {'path name': 'path:line name: N lines'}."""
    modules: list[str] = []
    functions: dict[str, str] = {}
    for path in python_files(root):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        lines = len(text.splitlines())
        if lines > MODULE_LINES:
            modules.append(f"{rel}: {lines} lines")
        for node in ast.walk(ast.parse(text, filename=rel)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            if length > FUNCTION_LINES and not REASON.search(ast.get_docstring(node) or ""):
                row = f"{rel}:{node.lineno} {node.name}: {length} lines"
                functions[f"{rel} {node.name}"] = row
    return modules, functions


def test_no_module_over_600_lines():
    modules, _ = rooms_too_big()
    assert not modules, "split these modules:\n" + "\n".join(modules)


def test_no_function_over_80_lines_without_a_reason():
    _, functions = rooms_too_big()
    unexplained = [row for key, row in functions.items() if key not in KNOWN_LONG]
    assert not unexplained, ("split these functions, or say in their docstring why not "
                             "(a sentence starting 'Long because'):\n" + "\n".join(unexplained))


def test_the_scanner_sees_a_long_function_and_its_reason(tmp_path):
    body = "\n".join(f"    x = {i}" for i in range(FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def plain():\n{body}\n\n\n"
                                      f"def said():\n    \"\"\"Loop. Long because it is hot.\"\"\"\n"
                                      f"{body}\n")
    (tmp_path / "big.py").write_text("x = 1\n" * (MODULE_LINES + 1))
    modules, functions = rooms_too_big(tmp_path)
    assert modules == [f"big.py: {MODULE_LINES + 1} lines"]
    assert functions == {"long.py plain": f"long.py:1 plain: {FUNCTION_LINES + 1} lines"}


if __name__ == "__main__":
    found_modules, found_functions = rooms_too_big()
    for row in found_modules + list(found_functions.values()):
        print(row)
    print(f"{len(found_modules)} module(s) over {MODULE_LINES} lines, {len(found_functions)} "
          f"function(s) over {FUNCTION_LINES} lines without a reason")
