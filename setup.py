"""Package layout only; everything else is in pyproject.toml.

The user asked for parsers/, engine/, replay/ (and we add synth/) at the top of the tree. They
install as subpackages of one `fpreplay` namespace so that nothing claims a generic top-level name
like `engine`. Subpackages are discovered, so adding a folder with an __init__.py is enough.
"""

import os

from setuptools import find_packages, setup

ROOTS = {
    "fpreplay": "fpreplay",
    "fpreplay.parsers": "parsers",
    "fpreplay.engine": "engine",
    "fpreplay.replay": "replay",
    "fpreplay.synth": "synth",
}

packages, package_dir = [], {}
for name, folder in ROOTS.items():
    if not os.path.isfile(os.path.join(folder, "__init__.py")):
        continue  # a part not yet in this checkout
    packages.append(name)
    package_dir[name] = folder
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.json", "*.toml", "*.tmf", "*.html", "*.js", "*.css"]},
)
