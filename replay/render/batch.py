"""`fpreplay batch` drawn: one row per trace, then the answer across traces."""

from __future__ import annotations

from rich.console import Console

from fpreplay.replay.render.terminal_tables import Col, Grid, policy_heads, show


def fleet_sentences(doc: dict) -> list[str]:
    """The answer across traces in words (also in the JSON document's `fleet.statements`)."""
    fleet = doc["fleet"]
    kind, lines = fleet["kind"], []
    for p in fleet["policies"]:
        others = p["others"]
        line = (f"{p['policy']} would have been enough (no IRP parked waiting for a reserved "
                f"request) on {p['sufficed']} of {fleet['analysed']} traces")
        if others:
            needs = [f"{kind}:{o['needs']}" if o["needs"] is not None
                     else "more than the sweep tried" for o in others]
            line += (f"; the other {len(others)} need " + ", ".join(needs[:-1])
                     + (" and " if len(needs) > 1 else "") + needs[-1])
        lines.append(line + ".")
    n = fleet["recommended_reserved"]
    if n is not None:
        lines.append(f"{kind}:{n} is the smallest reserve with which no IRP of any analysed trace "
                     "would have waited parked" + (" beyond the budget" if doc.get("budget_ns")
                                                   else "") + ".")
    if fleet["unsizable"]:
        lines.append(f"{len(fleet['unsizable'])} trace(s) need more than the sweep tried: "
                     + ", ".join(fleet["unsizable"][:5]) + ".")
    if fleet["failed_to_read"]:
        lines.append(f"{fleet['failed_to_read']} trace(s) could not be analysed (status "
                     "'error' below).")
    return lines


def render_batch(doc: dict, out: Console) -> None:
    policies = [s["policy"] for s in next((r["summaries"] for r in doc["traces"]
                                           if r["status"] == "ok"), [])][1:]
    heads, notes = policy_heads(policies)
    g = Grid(f"{len(doc['traces'])} traces, reserve sized for {doc['fleet']['kind']}"
             f" (ran {doc['ran']}, already done {doc['skipped']})", [
                 Col("trace", "the trace's name in the dataset", right=False, abbreviate=True),
                 Col("IRPs", "IRP instances"),
                 Col("failed", "IRPs that failed for want of memory", drop=2),
                 Col("incid", "low-memory incidents", drop=1),
                 Col("need", "the smallest reserve the recommendation rule gives this trace")]
             + [Col(h, "IRPs that policy rescues") for h in heads], notes=notes)
    for r in doc["traces"]:
        if r["status"] != "ok":
            g.add(r["trace"], "error", "", "", "", *["" for _ in policies])
            continue
        by_policy = {s["policy"]: s for s in r["summaries"]}
        need = r["sweep"]["needed_reserved"]
        g.add(r["trace"], str(r["irps"]), str(r["failed"]), str(r["incidents"]),
              "-" if need is None else str(need),
              *(str(by_policy[p]["rescued"]) if p in by_policy else "-" for p in policies))
    show(out, g)
    for r in doc["traces"]:
        if r["status"] != "ok":
            out.print(f"error: {r['trace']}: {r['error']}", markup=False)
    for line in doc["fleet"]["statements"]:
        out.print(line, markup=False)
    out.print(f"Dataset: {doc['output']} (irps/trace=NAME/*.parquet, summary.parquet, "
              "incidents.parquet)", markup=False)


def coverage(doc: dict) -> list[tuple[int, int]]:
    """(N, traces for which a reserve of N is enough), N from 0 to the largest need."""
    needs = [n for n in doc["fleet"]["needs"].values() if n is not None]
    top = max(needs, default=0)
    return [(n, sum(1 for m in needs if m <= n)) for n in range(0, top + 1)]


def render_batch_html(doc: dict) -> str:
    """One self-contained page across traces: the answer in words, how many traces each reserve
    size serves, and one row per trace (the numbers of the --json document)."""
    from fpreplay import __version__
    from fpreplay.replay.render.html import _table, esc, page
    from fpreplay.replay.render.html_charts import coverage_figure, embed

    fleet = doc["fleet"]
    points = coverage(doc)
    library, script, divs = embed([coverage_figure(points, fleet["kind"])]
                                  if len(points) > 1 else [])
    chart = "".join(f'<div class="chart">{d}</div>' for d in divs)
    ok = [r for r in doc["traces"] if r["status"] == "ok"]
    policies = [s["policy"] for s in (ok[0]["summaries"] if ok else [])][1:]
    rows = []
    for r in doc["traces"]:
        if r["status"] != "ok":
            rows.append([r["trace"], "error: " + (r["error"] or ""), "", "", "", "",
                         *["" for _ in policies]])
            continue
        by_policy = {s["policy"]: s for s in r["summaries"]}
        rows.append([r["trace"], ", ".join(r["inputs"]), r["irps"], r["failed"],
                     r["incidents"], r["sweep"]["needed_reserved"],
                     *(f"{by_policy[p]['rescued']} / {by_policy[p]['still_failed']} / "
                       f"{by_policy[p]['parked']}" if p in by_policy else "-"
                       for p in policies)])
    body = [
        f"<h1>fpreplay batch</h1><p class=\"muted\">{len(doc['traces'])} traces · memory model "
        f"{esc(doc['memory'])} · dataset {esc(doc['output'])} · fpreplay {esc(__version__)}</p>",
        "".join(f'<p class="verdict">{esc(s)}</p>' for s in fleet["statements"]),
        chart,
        "<h2>Traces</h2>",
        _table(["trace", "files", "IRPs", "failed", "incidents", f"needs ({fleet['kind']})",
                *(f"{p}: rescued / still failed / parked" for p in policies)], rows, left=2),
        '<p class="muted">needs: the smallest reserve with which no IRP of the trace would have '
        "waited parked (with --budget: whose p99 park wait fits it); 0 where nothing starved. "
        "The per-IRP tables are in the dataset, one partition per trace.</p>",
    ]
    return page(f"fpreplay batch: {doc['output']}", body, [library, script], {})
