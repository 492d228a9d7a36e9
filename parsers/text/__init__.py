"""Readers of the text exports users produce (etw-formats.md section 3), registered in
fpreplay.parsers.formats:

    ifr.py        KMDF in-flight-recorder dumps (!wdfkd.wdflogdump, !rcdrkd.rcdrlogdump)
    tracefmt.py   tracefmt output (WPP messages with a prefix)
    tracerpt.py   tracerpt CSV and XML
    xperf.py      xperf -a dumper text (old and new column layouts)

Shared: common.py (line streaming, batches, bad lines, clocks), wpptext.py (WPP prefixes, the
IFR/tracefmt loop), kernel_rows.py (kernel DiskIo/FileIo/HardFault rows from named fields).
Framework messages are classified by fpreplay.parsers.kmdf_messages.
"""
