"""Renderers: the what-if results as terminal tables (terminal.py), JSON documents (json.py) and
the self-contained HTML report (html.py). They format; they decide nothing."""
