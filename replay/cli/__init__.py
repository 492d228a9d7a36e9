"""Entry point: `fpreplay ...`. Turns user errors into one line and exit 2, bugs into exit 1."""

from __future__ import annotations

import errno
import os
import sys

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import app

# Each module adds its commands to `app`.
from fpreplay.replay.cli import analysis, batch, events, formats, synth  # noqa: F401,E402


_FULL_OR_BROKEN_DEVICE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


def _is_usage_error(e: Exception) -> bool:
    # typer >= 0.25 vendors click as typer._click; older ones use click itself.
    return any(c.__name__ == "ClickException" for c in type(e).__mro__) and hasattr(e, "show")


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="fpreplay", standalone_mode=False)
        return 0
    except FpreplayError as e:
        print(f"fpreplay: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # typer/click usage errors arrive here in non-standalone mode
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("fpreplay: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if type(e).__name__ == "Abort":
            return 130
        if _is_usage_error(e):
            e.show()
            return 2
        if isinstance(e, BrokenPipeError):
            return 0
        if isinstance(e, OSError) and e.errno in _FULL_OR_BROKEN_DEVICE:
            # Writing the answer failed for want of room (stdout on a full disk, /dev/full):
            # the user's to fix, like any other output that cannot be written.
            where = "stdout" if e.filename is None else e.filename
            print(f"fpreplay: {where}: cannot write: {e.strerror}", file=sys.stderr)
            return 2
        print(f"fpreplay: internal error: {type(e).__name__}: {e} "
              "(a bug; set FPREPLAY_DEBUG=1 for the traceback)", file=sys.stderr)
        if os.environ.get("FPREPLAY_DEBUG"):
            import traceback

            traceback.print_exc()
        return 1


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
