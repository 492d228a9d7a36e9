"""Vetting an Examine rule before polars sees it.

An `examine:N:RULE` policy is a polars SQL expression, and polars SQL reaches far beyond a per-IRP
test: table functions (`read_json('/etc/passwd')`), subqueries, several statements. Rules come
from config files and colleagues' command lines, so a rule is parsed into a syntax tree (sqlglot,
a maintained SQL parser: a regular expression over the text cannot see structure) and accepted
only if every node is a column of the IRP table, a literal, an operator or one of a few vetted
scalar functions. What polars then evaluates is the text regenerated from that checked tree, so
the two parsers cannot disagree about what was checked.
"""

from __future__ import annotations

from fpreplay.errors import ConfigError


def _allowed_nodes():
    from sqlglot import exp

    operators = (
        exp.Paren, exp.Not, exp.And, exp.Or, exp.Xor,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
        exp.Is, exp.In, exp.Between, exp.Like, exp.ILike,
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg,
        exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot,
        exp.BitwiseLeftShift, exp.BitwiseRightShift,
        exp.Case, exp.If,
    )
    values = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null)
    # Scalar functions of one IRP's own values; nothing that reads, lists or aggregates.
    functions = (exp.Abs, exp.Coalesce, exp.Nullif, exp.Lower, exp.Upper, exp.Length,
                 exp.Least, exp.Greatest)
    return operators + values + functions


def _node_name(node) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}"
    return type(node).__name__.lower()


def vet_examine_rule(rule: str, columns) -> str:
    """The rule as polars should evaluate it, or ConfigError naming what is not allowed.

    `columns`: the names a rule may read (the IRP table's)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(rule)
    except SqlglotError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"bad examine SQL {rule!r}: not an SQL expression: {first}") from None
    if tree is None:
        raise ConfigError(f"bad examine SQL {rule!r}: empty")
    allowed = _allowed_nodes()
    known = set(columns)
    for node in tree.walk():
        if not isinstance(node, allowed):
            raise ConfigError(f"bad examine SQL {rule!r}: {_node_name(node)} is not allowed "
                              "(a rule is a per-IRP test of the IRP table's columns with "
                              "literals, operators and abs, coalesce, nullif, lower, upper, "
                              "length, least, greatest)")
        if isinstance(node, exp.Column):
            if node.table:
                raise ConfigError(f"bad examine SQL {rule!r}: {node.sql()}: name columns "
                                  "without a table")
            if node.name not in known:
                raise ConfigError(f"bad examine SQL {rule!r}: no column {node.name!r} (columns: "
                                  f"{', '.join(sorted(known))})")
    return tree.sql()
