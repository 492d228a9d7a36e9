"""Tables that fit the terminal without ever breaking a cell.

Every terminal table is a `Grid`: columns with a one-word heading and its meaning, rows of cells.
`show` lays it out for the console's width (replay/cli/app.py: the terminal's, else COLUMNS,
else 80): a cell is never wrapped. When the table is too wide it, in this order, closes the gaps
between columns to one space, writes outcome values short (`allocF` for `alloc_failed`),
abbreviates long names (a policy's examine rule, a device path: `examine:8:pa…[1]`, the whole
name in a numbered note below the table), then drops the columns of least value, naming them
in a note. Below every table one legend in one style, `Columns: heading = meaning; ...`,
explains every heading it shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

# Outcome values written short when a table is too wide (the legend then says so).
SHORT_OUTCOMES = {"alloc_failed": "allocF", "reserved": "resv", "refused": "refus",
                  "cancelled": "cancl", "invalid_state": "inval", "incomplete": "incompl",
                  "still_failed": "stillF", "regressed": "regr", "rescued": "resc",
                  "parked_at_end": "parkEnd"}
# A long name is cut to no fewer characters than this (with its note number).
MIN_ABBREVIATED = 10
RULE = "─"
# Columns whose `drop` is at most this go before any name is abbreviated; the others after.
LOW_VALUE = 2


@dataclass
class Col:
    """One column: `head` is one word (no space, so it never breaks), `meaning` its legend
    entry. `drop` orders the columns a narrow terminal drops (lowest first; None: never).
    `abbreviate`: long cell values may be cut, the whole value in a numbered note. `short`:
    cell values written short when the table is too wide."""

    head: str
    meaning: str
    right: bool = True
    drop: int | None = None
    abbreviate: bool = False
    short: dict[str, str] | None = None


# A cell: its text, or (text, style), or several lines (a median and its min–max below it).
Cell = "str | Text | list[str | Text]"


@dataclass
class Grid:
    title: str | None
    cols: list[Col]
    rows: list[list] = field(default_factory=list)
    caption: str | None = None           # under the rows: "20 more (see --json)"
    notes: list[str] = field(default_factory=list)   # after the legend
    legend: bool = True                  # False: a later table of the same columns explains it
    legend_first: list[Col] = field(default_factory=list)   # the earlier tables' own columns

    def add(self, *cells) -> None:
        self.rows.append(list(cells))


def _lines(cell) -> list[Text]:
    if isinstance(cell, list):
        return [line if isinstance(line, Text) else Text(str(line)) for line in cell]
    if isinstance(cell, Text):
        return cell.split("\n") if "\n" in cell.plain else [cell]
    return [Text(line) for line in str(cell).split("\n")]


@dataclass
class _Layout:
    cols: list[int]                      # indices of the columns shown
    cells: list[list[list[Text]]]        # rows x shown columns x lines
    gap: int
    dropped: list[str]
    notes: list[str]
    shortened: list[Col]


def _widths(grid: Grid, layout: _Layout) -> list[int]:
    out = []
    for j, c in enumerate(layout.cols):
        w = cell_len(grid.cols[c].head)
        for row in layout.cells:
            w = max(w, *(cell_len(line.plain) for line in row[j]))
        out.append(w)
    return out


def _total(grid: Grid, layout: _Layout) -> int:
    widths = _widths(grid, layout)
    return sum(widths) + layout.gap * (len(widths) - 1)


def _shorten_values(grid: Grid, layout: _Layout, width: int) -> None:
    for j, c in enumerate(layout.cols):
        col = grid.cols[c]
        if not col.short or _total(grid, layout) <= width:
            continue
        changed = False
        for row in layout.cells:
            new = []
            for line in row[j]:
                short = col.short.get(line.plain)
                changed |= short is not None
                new.append(Text(short, style=line.style) if short is not None else line)
            row[j] = new
        if changed:
            layout.shortened.append(col)


def _abbreviate(grid: Grid, layout: _Layout, width: int) -> None:
    """Cut the long values of the `abbreviate` columns, widest column first, to what the width
    leaves them (not below MIN_ABBREVIATED); each cut value gets a numbered note."""
    numbers: dict[str, int] = {}
    for j in sorted(range(len(layout.cols)), key=lambda j: -_widths(grid, layout)[j]):
        col = grid.cols[layout.cols[j]]
        excess = _total(grid, layout) - width
        if not col.abbreviate or excess <= 0:
            continue
        limit = max(MIN_ABBREVIATED, cell_len(col.head), _widths(grid, layout)[j] - excess)
        for row in layout.cells:
            new = []
            for line in row[j]:
                value = line.plain
                if cell_len(value) <= limit:
                    new.append(line)
                    continue
                if value not in numbers:
                    numbers[value] = len(numbers) + 1
                    layout.notes.append(f"[{numbers[value]}] {value}")
                tag = f"…[{numbers[value]}]"
                new.append(Text(value[:max(1, limit - len(tag))] + tag, style=line.style))
            row[j] = new


def _drop_columns(grid: Grid, layout: _Layout, width: int, up_to: int | None = None) -> None:
    """Drop the columns of least value (`drop` lowest first; only those up to `up_to`)."""
    while _total(grid, layout) > width:
        droppable = [(grid.cols[c].drop, -j, j) for j, c in enumerate(layout.cols)
                     if grid.cols[c].drop is not None
                     and (up_to is None or grid.cols[c].drop <= up_to)]
        if not droppable:
            return
        _, _, j = min(droppable)
        layout.dropped.append(grid.cols[layout.cols[j]].head)
        del layout.cols[j]
        for row in layout.cells:
            del row[j]


def fit(grid: Grid, width: int) -> _Layout:
    layout = _Layout(cols=list(range(len(grid.cols))),
                     cells=[[_lines(c) for c in row] for row in grid.rows], gap=2, dropped=[],
                     notes=[], shortened=[])
    for step in (lambda: setattr(layout, "gap", 1), lambda: _shorten_values(grid, layout, width),
                 lambda: _drop_columns(grid, layout, width, LOW_VALUE),
                 lambda: _abbreviate(grid, layout, width),
                 lambda: _drop_columns(grid, layout, width)):
        if _total(grid, layout) <= width:
            break
        step()
    return layout


def _pad(text: Text, width: int, right: bool) -> Text:
    space = " " * (width - cell_len(text.plain))
    return Text.assemble(space, text) if right else Text.assemble(text, space)


def legend_text(grid: Grid, layout: _Layout) -> str:
    """`Columns: head = meaning; ...` for the columns shown, then what was written short."""
    groups: list[tuple[list[str], str]] = []   # adjacent columns of one meaning: one entry
    for col in grid.legend_first + [grid.cols[c] for c in layout.cols]:
        if groups and groups[-1][1] == col.meaning:
            groups[-1][0].append(col.head)
        else:
            groups.append(([col.head], col.meaning))
    text = "Columns: " + "; ".join(f"{', '.join(heads)} = {meaning}"
                                   for heads, meaning in groups) + "."
    for col in layout.shortened:
        used = sorted({v for v, s in col.short.items()})
        text += (f" Written short in {col.head}: "
                 + ", ".join(f"{col.short[v]} = {v}" for v in used) + ".")
    return text


def render_lines(grid: Grid, width: int) -> tuple[list[Text], _Layout]:
    """The table's lines (heading, rule, rows), each at most `width` wide when it can be."""
    layout = fit(grid, width)
    widths = _widths(grid, layout)
    sep = " " * layout.gap
    lines = [Text(sep.join(f"{grid.cols[c].head:>{w}}" if grid.cols[c].right
                           else f"{grid.cols[c].head:<{w}}"
                           for c, w in zip(layout.cols, widths)).rstrip())]
    lines.append(Text(RULE * sum(widths) + RULE * layout.gap * (len(widths) - 1)))
    for row in layout.cells:
        height = max(len(cell) for cell in row)
        for k in range(height):
            parts = [_pad(cell[k] if k < len(cell) else Text(""), w, grid.cols[c].right)
                     for cell, c, w in zip(row, layout.cols, widths)]
            line = Text(sep).join(parts)
            line.rstrip()
            lines.append(line)
    return lines, layout


def show(out: Console, grid: Grid) -> None:
    """Print the grid laid out for the console: title, table, caption, legend and notes."""
    lines, layout = render_lines(grid, out.width)
    if grid.title:
        out.print(grid.title, style="bold", markup=False)
    for line in lines:
        out.print(line, soft_wrap=True, no_wrap=True, overflow="ignore", crop=False)
    if grid.caption:
        out.print(grid.caption, markup=False)
    if grid.legend:
        out.print(legend_text(grid, layout), style="dim", markup=False)
    if layout.dropped:
        out.print(f"Not shown at this width: {', '.join(layout.dropped)} (a wider terminal or "
                  "--json shows them).", style="dim", markup=False)
    for note in layout.notes + grid.notes:
        out.print(note, markup=False, soft_wrap=True)
    out.print()


def policy_heads(policies: list[str], limit: int = 12) -> tuple[list[str], list[str]]:
    """Column headings for per-policy columns: a policy name that is one short word heads its
    column; a longer one (an examine rule) is `P1`, `P2`, ... Returns the headings and the
    notes that name the policy behind each `Pk` (whole, on a line of its own)."""
    heads, notes = [], []
    for k, p in enumerate(policies, 1):
        if len(p) <= limit and " " not in p:
            heads.append(p)
        else:
            heads.append(f"P{k}")
            notes.append(f"P{k} = {p}")
    return heads, notes
