"""WPP software tracing: TMF catalogues and message formatting (see tmf.py)."""

from fpreplay.parsers.wpp.tmf import FormattedMessage, TmfCatalog, load_tmf_dir, load_tmf_dir_once

__all__ = ["FormattedMessage", "TmfCatalog", "load_tmf_dir", "load_tmf_dir_once"]
