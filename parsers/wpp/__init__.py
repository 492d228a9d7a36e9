"""WPP software tracing: TMF catalogues and message formatting (see tmf.py)."""

from fpreplay.parsers.wpp.tmf import FormattedMessage, TmfCatalog, load_tmf_dir

__all__ = ["FormattedMessage", "TmfCatalog", "load_tmf_dir"]
