"""The learning curve as a markdown table: rows are rankings, columns labelled cases."""

from __future__ import annotations

from typing import Any

from flows87.document import Markdown
from flows87.document import table as md_table


def _cell(m: dict[str, Any] | None) -> str:
    if not m:
        return "–"
    auc, prec = m.get("pr_auc"), m.get("precision_at_budget")
    return f"{auc if auc is not None else '–'} / {prec if prec is not None else '–'}"


def rows(doc: dict[str, Any]) -> list[list[str]]:
    """today / learned / blend per method / GFP baselines, one cell per column of labels."""
    cols = doc["columns"]
    out = [
        ["labelled accounts (reported)"]
        + [f"{doc['labels'][c]['accounts']:,} ({doc['labels'][c]['positives']:,})" for c in cols]
    ]
    out.append(["today (rules + anomaly)"] + [_cell(doc["today"]) for _ in cols])
    for method, points in doc["methods"].items():
        out.append([f"learned ({method})"] + [_cell(points[c]["learned"]) for c in cols])
        out.append([f"blend ({method})"] + [_cell(points[c]["blend"]) for c in cols])
    g = doc.get("gfp")
    if g and "timed_out" in g:
        out.append([f"GFP (stopped after {g['timed_out']:,.0f} s)"] + ["–" for _ in cols])
    elif g:
        out.append(["GFP + XGBoost"] + [_cell(g["xgboost"].get(c)) for c in cols])
        out.append(["GFP + IForest (no labels)"] + [_cell(g["iforest"]) for _ in cols])
    return out


def table(doc: dict[str, Any]) -> str:
    cols = doc["columns"]
    header = ["ranking"] + [
        "all labels" if c == "all" else f"{c} cases ({doc['labels'][c]['cases_reviewed']:,})"
        for c in cols
    ]
    return md_table(header, rows(doc), str)


def markdown(doc: dict[str, Any], title: str = "Learning curve", level: int = 1) -> str:
    b = doc["budget"]
    md = Markdown(title) if level == 1 else Markdown().heading(title, level)
    return md.para(
        f"PR-AUC / precision at the {b:.0%} alert budget over the report period's "
        f"{doc['test_accounts']:,} active accounts ({doc['test_suspicious']:,} suspicious). "
        "Simulated investigators reviewed the tuning run's cases in rank order (columns: "
        f"cases asked, reviewed in brackets; the run has {doc['tuning_cases']:,}) and "
        "decided each case's accounts by the tuning period's truth; 'all labels' trains on "
        "every active account of the tuning period. Blend weight "
        f"{doc['blend_weight']}; method in use: {doc['method_in_use']}.",
        table(doc),
    ).text()
