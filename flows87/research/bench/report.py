"""bench.md: the methods side by side, the flows87 details, throughput per stage."""

from __future__ import annotations

import json
from typing import Any

from flows87.document import Markdown
from flows87.document import table as md_table


def table(doc: dict[str, Any]) -> str:
    """The methods side by side: recall and precision at the budget, PR-AUC, transactions/s."""
    b = doc["budget"]
    rows = []
    for name, m in doc["methods"].items():
        if "timed_out" in m:
            stopped = f"not finished within {m['timed_out']:,.0f} s (stopped)"
            rows.append([m.get("label", name), stopped, "", "", "", ""])
            continue
        mm, th = m["metrics"], m["metrics"].get("threshold", {})
        rows.append(
            [
                m.get("label", name),
                mm["recall_at_budget"],
                mm["precision_at_budget"],
                mm["pr_auc"],
                f"{th.get('recall')} ({th.get('alert_rate')})",
                f"{m['throughput']['txn_per_s']:,}",
            ]
        )
    header = [
        "method",
        f"recall at {b:.1%}",
        f"precision at {b:.1%}",
        "PR-AUC",
        "recall at tuned threshold (alert rate)",
        "transactions/s",
    ]
    return md_table(header, rows, str)


def _gfp_text(doc: dict[str, Any]) -> str:
    g = doc["methods"].get("gfp+iforest")
    if not g or "gfp" not in g:
        return ""
    if "timed_out" in g:
        return (
            f"GFP computed: {g['gfp']['text']}; stopped after {g['timed_out']:,.0f} s "
            "without a result."
        )
    n = g["throughput"].get("fitted_transactions")
    return (
        f"GFP computed: {g['gfp']['text']} (histogram bins {g['gfp']['bins']}). Its IForest "
        f"was fitted on the {f'{n:,} ' if n else ''}transactions from "
        f"{g['throughput']['fitted_from']} to the cut."
    )


def markdown(doc: dict[str, Any]) -> str:
    m = doc["methods"]["flows87"]["metrics"]
    tune, rep = doc["periods"]["tune"], doc["periods"]["report"]
    how = (
        "as long as the report period, just before it"
        if doc["periods"]["tune_on"] == "report-length"
        else "all of the input before the report period"
    )
    sweep = doc["tune"].get("sweep")
    out = Markdown(f"Benchmark: {doc['input']}").para(
        f"{doc['transactions']:,} transactions. Tuned on [{tune['start']}, {tune['end']}) "
        f"({tune['days']:g} days, {how}; {doc['tune']['accounts']:,} accounts active then, "
        f"their labels only), reported on [{rep['start']}, {rep['end']}) ({rep['days']:g} "
        f"days; {m['accounts']:,} accounts active, {m['suspicious_accounts']:,} labelled "
        f"suspicious). Alert budget {doc['budget']:.1%} of the report period's active accounts.",
        table(doc),
        f"flows87 cases: {m['cases']['alert_rate']:.2%} of accounts, recall "
        f"{m['cases']['recall']}; top cases: {json.dumps(m.get('top_cases') or {})}.",
        f"Tuned: threshold {doc['tune']['threshold']:.4f}"
        + (f"; sweep chose {sweep['chosen'] or 'the defaults'}" if sweep else "")
        + ".",
        _gfp_text(doc),
    )
    out.heading("Throughput of the report run, per stage").table(
        ["stage", "seconds", "transactions/s"],
        [
            [f"{name}: {stage}", s["seconds"], f"{s['txn_per_s']:,}" if s["txn_per_s"] else ""]
            for name, meth in doc["methods"].items()
            for stage, s in meth.get("throughput", {}).get("stages", {}).items()
        ],
        str,
    )
    if "typologies" in m:
        out.heading("flows87 recall at the budget per typology").table(
            ["typology", "accounts", "recall"],
            [[typ, v["accounts"], v["recall_at_budget"]] for typ, v in m["typologies"].items()],
            str,
        )
    text = out.text()
    if "learning" in doc:  # `flows87 bench --learning`
        from flows87.research.learning import markdown as learning_md

        text += "\n" + learning_md(doc["learning"], "The learned scorer: learning curve", 2)
    return text
