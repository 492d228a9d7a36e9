"""Package layout only; everything else is in pyproject.toml.

Each top-level folder is one layer and installs as `fpreplay.<folder>` (fpreplay/ itself is the
contract every layer shares), so nothing claims a generic top-level name like `engine`. A source
checkout is used through `pip install -e .`, which maps the folders the same way. Subpackages are
discovered, so adding a folder with an __init__.py below a layer is enough.
"""

from setuptools import Extension, find_packages, setup

ROOTS = {
    "fpreplay": "fpreplay",
    "fpreplay.parsers": "parsers",
    "fpreplay.lifecycles": "lifecycles",
    "fpreplay.engine": "engine",
    "fpreplay.replay": "replay",
    "fpreplay.synth": "synth",
}

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    packages.append(name)
    package_dir[name] = folder
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

# The record walk in C (parsers/etl/_walkc.c, Python's C API only): optional, so an install
# without a compiler still succeeds and the reader uses the same walk in Python (scan.py).
WALK_EXTENSION = Extension("fpreplay.parsers.etl._walkc", ["parsers/etl/_walkc.c"], optional=True)

setup(
    packages=packages,
    package_dir=package_dir,
    ext_modules=[WALK_EXTENSION],
    package_data={"": ["*.json", "*.toml", "*.tmf", "*.html", "*.js", "*.css", "py.typed"]},
)
