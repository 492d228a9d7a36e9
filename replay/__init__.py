"""The command line and the reports: a thin layer over the library API."""
