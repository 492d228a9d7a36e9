"""`python -m fpreplay ...` is the same as the `fpreplay` command."""

from fpreplay.replay.cli import entry

entry()
