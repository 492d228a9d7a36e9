"""Payload decoders: EtlRecord -> rows of the event table.

A decoder is `decode(record: EtlRecord, ctx: DecodeContext) -> list[dict]` returning zero or more
event rows (dicts keyed by fpreplay.schema.EVENT_COLUMNS names; `ts_ns`, `cpu`, `pid`, `tid` and
`source` are filled in by the walker when absent). The walker looks decoders up by key before it
builds an EtlRecord, so records nobody decodes cost only a dict lookup:

  KERNEL[(group, opcode)]              system/compact/perfinfo headers
  MANIFEST[(provider_guid_str, id)]    EVENT_HEADER events of known manifest providers
  CLASSIC[(class_guid_str, type)]      EVENT_TRACE_HEADER / instance headers
  TRACELOGGING                         EVENT_HEADER events carrying an EVENT_SCHEMA_TL item
  WPP                                  MESSAGE_TRACE_HEADER records (needs --tmf)

GUID strings are lower case without braces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fpreplay.diagnostics import Diagnostics

Decoder = Callable[..., list[dict]]

KERNEL: dict[tuple[int, int], Decoder] = {}
MANIFEST: dict[tuple[str, int], Decoder] = {}
CLASSIC: dict[tuple[str, int], Decoder] = {}
TRACELOGGING: Decoder | None = None
WPP: Decoder | None = None


@dataclass
class DecodeContext:
    """What decoders may need beyond one record: options, diagnostics, per-trace state."""

    source: str
    diagnostics: Diagnostics
    tmf_dirs: list = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    state: dict = field(default_factory=dict)   # e.g. FileObject -> name maps, TMF cache



# --- registration: each decoder module fills the tables above. Imported last because the
# modules need nothing from here but the tables are defined first.
from fpreplay.parsers.etl.decoders import kernel as _kernel  # noqa: E402
from fpreplay.parsers.etl.decoders import manifest as _manifest  # noqa: E402
from fpreplay.parsers.etl.decoders import tracelogging as _tracelogging  # noqa: E402
from fpreplay.parsers.etl.decoders import wpp as _wpp  # noqa: E402

_kernel.register(KERNEL)
_manifest.register(MANIFEST)
TRACELOGGING = _tracelogging.decode
WPP = _wpp.decode
