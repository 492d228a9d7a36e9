"""`fpreplay formats`: every input format fpreplay recognises, how, and what it yields."""

from __future__ import annotations

import json
import textwrap

from fpreplay.replay.cli.app import app, output_width
from fpreplay.replay.cli.options import JsonOpt

_INTRO = ("An input is recognised by its content, never by its name. Any of them may be "
          "compressed with gzip (bytes 1f 8b) or zipped (bytes 'PK\\3\\4': the zip's first .etl "
          "member, else its first file). '-' (or /dev/stdin, a pipe) reads standard input, "
          "copied to a temporary file first. The same trace given twice is read once.")


@app.command(short_help="The input formats recognised, how, and what each yields.")
def formats(json_: JsonOpt = False) -> None:
    """List every input format fpreplay recognises, how it is recognised and what it yields.

    \b
    Examples:
      fpreplay formats | less
      fpreplay formats --json | jq -r '.formats[].name'
    """
    from fpreplay.parsers.formats import FORMATS

    if json_:
        print(json.dumps({"schema": "fpreplay.formats/1", "note": _INTRO, "formats": [
            {"name": f.name or None, "title": f.title, "recognised_by": f.recognised_by,
             "yields": f.yields, "read": bool(f.name)} for f in FORMATS]}))
        return
    width = output_width() or _terminal_width()
    lines = textwrap.wrap(_INTRO, width) + [""]
    label = 17
    for f in FORMATS:
        lines.append(f"{f.name or '(refused)'}: {f.title}")
        for key, text in (("recognised by", f.recognised_by), ("yields", f.yields)):
            lines += textwrap.wrap(text, width, initial_indent=f"  {key:<{label - 2}}",
                                   subsequent_indent=" " * label)
    print("\n".join(lines))


def _terminal_width() -> int:
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns)
