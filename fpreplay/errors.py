"""The small exception hierarchy every layer raises.

Anything derived from FpreplayError is the user's problem (bad input, bad option) and becomes one
line on stderr with exit status 2. Anything else escaping to the CLI is a bug (exit status 1).
"""

from __future__ import annotations


class FpreplayError(Exception):
    """Base: a problem the user can fix. The CLI prints str(error) and exits 2."""


class InputError(FpreplayError):
    """An input that cannot be read at all. Names the file and, where known, the byte offset."""

    def __init__(self, path: object, message: str, offset: int | None = None):
        self.path = str(path)
        self.offset = offset
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.offset is None else f"{self.path}: byte {self.offset}"
        return f"{where}: {self.message}"


class TraceFormatError(InputError):
    """A binary trace whose structure is wrong at a known offset."""


class ConfigError(FpreplayError):
    """A bad policy string, SQL rule, memory model, duration or driver config."""
