"""Write an evaluation (the dict of `evaluate_run`): evaluation.json, evaluation.md,
evaluation.html and PNG plots beside them (matplotlib, Agg backend: no display needed).

Plots: pr_curve.png (precision/recall of the risk-score ranking), recall_vs_budget.png,
typology_recall.png (per-typology recall in a case and at the 1 % budget),
rule_overlap.png (Jaccard heatmap of the signals' flagged accounts), alerts_per_day.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows87.document import Section, to_html, to_markdown
from flows87.document import fmt as _fmt
from flows87.io import write_json, write_text

MAX_HEATMAP = 40  # signals shown in the overlap heatmap (those flagging most accounts)


# --- plots -----------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    plt = _pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path.name


def plot_pr_curve(ev: dict[str, Any], path: Path) -> str | None:
    acc = ev.get("account_level")
    if not acc or not acc["pr_curve"]["recall"]:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.step(acc["pr_curve"]["recall"], acc["pr_curve"]["precision"], where="post", label="accounts")
    tx = (ev.get("transaction_level") or {}).get("ranking")
    if tx and tx.get("positives"):
        ax.axhline(tx["positives"] / tx["items"], color="grey", lw=0.5, ls=":")
    ax.axhline(
        acc["positives"] / acc["items"] if acc["items"] else 0,
        color="grey",
        ls="--",
        lw=0.8,
        label="random",
    )
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.02),
        ylim=(0, 1.05),
        title=f"Precision-recall of risk_score (AP {acc['average_precision'] or 0:.3f})",
    )
    ax.legend(loc="lower left")
    return _save(fig, path)


def plot_recall_vs_budget(ev: dict[str, Any], path: Path) -> str | None:
    acc = ev.get("account_level")
    if not acc:
        return None
    plt = _pyplot()
    rb = acc["recall_vs_budget"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.plot([b * 100 for b in rb["budget"]], [r or 0 for r in rb["recall"]], marker="o")
    for key, r in acc["recall_at_budget"].items():
        ax.annotate(
            f"{key}: {r or 0:.0%}",
            (float(key.rstrip("%")), r or 0),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    ax.set(
        xlabel="alert budget (% of accounts, by risk score)",
        ylabel="recall",
        ylim=(0, 1.05),
        title="Recall at alert budget",
    )
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_typologies(ev: dict[str, Any], path: Path) -> str | None:
    typ = ev.get("typologies")
    if not typ:
        return None
    plt = _pyplot()
    names = sorted(typ)
    key = "1.0%" if all("1.0%" in typ[n]["recall_at_budget"] for n in names) else None
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], [typ[n]["recall"] for n in names], height=0.4, label="in a case")
    if key:
        ax.barh(
            [y - 0.2 for y in ys],
            [typ[n]["recall_at_budget"][key] for n in names],
            height=0.4,
            label=f"top {key} by risk",
        )
    ax.set_yticks(list(ys), [f"{n} ({typ[n]['accounts']})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="recall", xlim=(0, 1.05), title="Recall per typology (suspicious accounts)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_overlap(ev: dict[str, Any], path: Path) -> str | None:
    ov = ev.get("rule_overlap")
    if not ov or not ov["signals"]:
        return None
    import numpy as np

    plt = _pyplot()
    names = ov["signals"]
    m = np.asarray(ov["jaccard"], dtype=float)
    if len(names) > MAX_HEATMAP:  # the signals flagging most accounts (diagonal = own size)
        sizes = ov.get("accounts") or [0] * len(names)
        keep = sorted(range(len(names)), key=lambda i: -sizes[i])[:MAX_HEATMAP]
        keep.sort()
        names, m = [names[i] for i in keep], m[np.ix_(keep, keep)]
    side = max(4.5, 0.22 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title("Rule overlap (Jaccard of flagged accounts)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _save(fig, path)


def plot_alerts_per_day(ev: dict[str, Any], path: Path) -> str | None:
    days = ev.get("alert_volume", {}).get("per_day") or []
    if not days:
        return None
    from datetime import date

    plt = _pyplot()
    xs = [date.fromisoformat(d["day"]) for d in days]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(xs, [d["signals"] for d in days], label="signals", alpha=0.7)
    ax.plot(xs, [d["cases"] for d in days], color="C3", marker=".", label="new cases")
    ax.set(ylabel="per day", title="Alert volume per day")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, path)


PLOTS = {
    "pr_curve.png": plot_pr_curve,
    "recall_vs_budget.png": plot_recall_vs_budget,
    "typology_recall.png": plot_typologies,
    "rule_overlap.png": plot_overlap,
    "alerts_per_day.png": plot_alerts_per_day,
}


# --- text ------------------------------------------------------------------------------------


def parts(ev: dict[str, Any], images: dict[str, str]) -> list[Section]:
    """The report's sections, shared by the Markdown and HTML renderings."""
    out = [
        Section(
            "Run",
            header=["", ""],
            rows=[
                ["run directory", ev["run_dir"]],
                ["evaluated at", ev["evaluated_at"]],
                ["labelled", ev["labelled"]],
                ["accounts", ev["accounts"]],
                ["signals", ev["signals"]],
                ["cases", ev["cases"]],
            ],
        )
    ]
    acc = ev.get("account_level")
    if acc:
        a, s = acc["alerted"], acc["signalled"]
        out.append(
            Section(
                "Accounts",
                text=(
                    f"{acc['positives']:,} of {acc['items']:,} accounts are labelled suspicious. "
                    "Alerted = in a case; signalled = flagged by any rule, detector or graph "
                    "pattern; the ranking metrics order every account by risk_score."
                ),
                header=["measure", "value"],
                rows=[
                    [
                        "alerted: precision / recall / F1",
                        f"{_fmt(a['precision'])} / {_fmt(a['recall'])} / {_fmt(a['f1'])}",
                    ],
                    [
                        "alerted accounts (alert rate)",
                        f"{a['flagged']:,} ({_fmt(a['alert_rate'])})",
                    ],
                    [
                        "signalled: precision / recall / F1",
                        f"{_fmt(s['precision'])} / {_fmt(s['recall'])} / {_fmt(s['f1'])}",
                    ],
                    ["PR-AUC (average precision)", acc["average_precision"]],
                    *[[f"precision@{k}", v] for k, v in acc["precision_at_k"].items()],
                    *[
                        [f"recall at {k} budget ({acc['alerts_at_budget'][k]:,} accounts)", v]
                        for k, v in acc["recall_at_budget"].items()
                    ],
                    *[
                        [f"precision at {k} budget", v]
                        for k, v in acc["precision_at_budget"].items()
                    ],
                ],
                image=images.get("pr_curve.png"),
            )
        )
        out.append(Section("Recall vs alert budget", image=images.get("recall_vs_budget.png")))
    typ = ev.get("typologies")
    if typ:
        budgets = list(next(iter(typ.values()))["recall_at_budget"])
        out.append(
            Section(
                "Per typology",
                header=[
                    "typology",
                    "accounts",
                    "recall (in a case)",
                    "recall (signalled)",
                    *[f"recall at {b}" for b in budgets],
                    "PR-AUC",
                ],
                rows=[
                    [
                        t,
                        v["accounts"],
                        v["recall"],
                        v["recall_signalled"],
                        *[v["recall_at_budget"][b] for b in budgets],
                        v["average_precision"],
                    ]
                    for t, v in typ.items()
                ],
                image=images.get("typology_recall.png"),
            )
        )
    scores = ev.get("scores")
    if scores:
        keys = list(scores[0]["recall_at_budget"])
        out.append(
            Section(
                "Scores alone (risk score, signal risk, each anomaly detector)",
                text="Each score used alone to rank every account.",
                header=["score", "PR-AUC", *[f"recall at {k}" for k in keys]],
                rows=[
                    [s["score"], s["average_precision"], *[s["recall_at_budget"][k] for k in keys]]
                    for s in scores
                ],
            )
        )
    cl = ev.get("case_level")
    if cl:
        out.append(
            Section("Cases", header=["measure", "value"], rows=[[k, v] for k, v in cl.items()])
        )
    tl = ev.get("transaction_level")
    if tl:
        r = tl["ranking"]
        out.append(
            Section(
                "Transactions",
                text=f"Definition: {tl['definition']}.",
                header=["measure", "value"],
                rows=[
                    ["suspicious transactions", tl["positives"]],
                    ["alerted transactions", tl["flagged"]],
                    [
                        "precision / recall / F1",
                        f"{_fmt(tl['precision'])} / {_fmt(tl['recall'])} / {_fmt(tl['f1'])}",
                    ],
                    [
                        "signal evidence only: precision / recall",
                        f"{_fmt(tl['via_signal']['precision'])} / {_fmt(tl['via_signal']['recall'])}",
                    ],
                    [
                        "in a case only: precision / recall",
                        f"{_fmt(tl['via_case']['precision'])} / {_fmt(tl['via_case']['recall'])}",
                    ],
                    ["PR-AUC (score = max account risk)", r["average_precision"]],
                    *[[f"recall at {k} budget", v] for k, v in r["recall_at_budget"].items()],
                    *[[f"recall, {t}", v["recall"]] for t, v in tl["typologies"].items()],
                ],
            )
        )
    src = ev.get("sources_contribution")
    if src:
        out.append(
            Section(
                "Per source (rules, detectors, graph patterns)",
                text="Alone: the accounts it flags. Only: suspicious accounts no other source flags.",
                header=[
                    "source",
                    "accounts",
                    "suspicious",
                    "precision",
                    "recall",
                    "F1",
                    "only it flags",
                    "only it catches",
                    "recall lost without it",
                ],
                rows=[
                    [
                        r["source"],
                        r["accounts"],
                        r["tp"],
                        r["precision"],
                        r["recall"],
                        r["f1"],
                        r["only_accounts"],
                        r["only_tp"],
                        r["only_recall"],
                    ]
                    for r in src
                ],
            )
        )
    sig = ev.get("signals_contribution")
    if sig:
        out.append(
            Section(
                "Per rule and detector",
                text="Alone: recall and precision of the accounts it flags. Only: suspicious accounts no other signal flags.",
                header=[
                    "source",
                    "signal",
                    "accounts",
                    "suspicious",
                    "precision",
                    "recall",
                    "F1",
                    "only it flags",
                    "only it catches",
                ],
                rows=[
                    [
                        r["source"],
                        r["signal_id"],
                        r["accounts"],
                        r["tp"],
                        r["precision"],
                        r["recall"],
                        r["f1"],
                        r["only_accounts"],
                        r["only_tp"],
                    ]
                    for r in sig
                ],
            )
        )
    ov = ev.get("rule_overlap")
    if ov:
        out.append(
            Section(
                "Rule overlap",
                text="Jaccard similarity of the account sets two signals flag (the most overlapping pairs).",
                header=["signal", "signal", "accounts", "accounts", "shared", "Jaccard"],
                rows=[
                    [p["a"], p["b"], p["a_accounts"], p["b_accounts"], p["shared"], p["jaccard"]]
                    for p in ov["top_pairs"]
                ],
                image=images.get("rule_overlap.png"),
            )
        )
    vol = ev.get("alert_volume")
    if vol:
        out.append(
            Section(
                "Alert volume per day",
                text=(
                    f"{vol.get('signals', 0):,} dated signals and {vol.get('cases', 0):,} cases over "
                    f"{vol['days']} days with alerts (mean {_fmt(vol.get('signals_per_day_mean'))} signals, "
                    f"peak {_fmt(vol.get('signals_per_day_max'))}); {vol.get('undated_signals', 0):,} "
                    "signals have no window and no evidence transaction. Signals are dated by "
                    "their window start, else their earliest evidence transaction; cases by their first transaction."
                ),
                header=["day", "signals", "accounts signalled", "cases"],
                rows=[
                    [d["day"], d["signals"], d["accounts_signalled"], d["cases"]]
                    for d in vol["per_day"]
                ],
                image=images.get("alerts_per_day.png"),
            )
        )
    disp = ev.get("dispositions")
    if disp:
        rows = [
            ["decided cases", disp["decided_cases"]],
            ["by disposition", disp["by_disposition"]],
            ["precision (reported / decided)", disp["precision"]],
        ]
        for k in (
            "run_cases_decided",
            "run_precision",
            "decided_accounts",
            "average_precision_reviewed",
            "label_agreement",
        ):
            if k in disp:
                rows.append([k.replace("_", " "), disp[k]])
        rows += [
            [f"rule {k}: precision ({v['decided_cases']} decided)", v["precision"]]
            for k, v in disp["rules"].items()
        ]
        out.append(
            Section(
                "Investigators' dispositions",
                text="Reported (STR filed) counts as positive; false positive and no further action as negative.",
                header=["measure", "value"],
                rows=rows,
            )
        )
    return out


def write_evaluation(ev: dict[str, Any], out_dir: str | Path, plots: bool = True) -> dict[str, str]:
    """Write evaluation.json, the PNG plots, evaluation.md and evaluation.html into out_dir;
    returns {kind: path} of every file written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    if plots:
        for name, fn in PLOTS.items():
            made = fn(ev, out_dir / name)
            if made:
                images[name] = made
            elif (out_dir / name).exists():  # a stale plot of an earlier evaluation
                (out_dir / name).unlink()
    title = f"flows87 evaluation: {Path(ev['run_dir']).name}"
    sections = parts(ev, images)
    files = {
        "json": str(out_dir / "evaluation.json"),
        "markdown": str(out_dir / "evaluation.md"),
        "html": str(out_dir / "evaluation.html"),
        **{name: str(out_dir / name) for name in images},
    }
    write_json({**ev, "files": files}, out_dir / "evaluation.json")
    write_text(to_markdown(title, sections), out_dir / "evaluation.md")
    write_text(to_html(title, sections), out_dir / "evaluation.html")
    return files
