"""Sweep outputs: sweep.json (every setting), sweep.md (the Pareto front), pareto.png."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flows87.document import Markdown
from flows87.io import write_json


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def _setting_text(setting: dict) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in sorted(setting.items())) or "(defaults)"


def markdown(doc: dict[str, Any]) -> str:
    t = doc["timing"]
    out = Markdown(f"Sweep of {doc['run_dir']}").para(
        f"Rules: `{doc['rules_dir']}` · mode: {doc['mode']} · settings evaluated: "
        f"{len(doc['settings'])} · alert budget: {doc['max_alert_rate']:.2%} · "
        f"population: {doc['population']} accounts",
        f"Time: setup {t['setup_seconds']} s, {t['mean_seconds_per_setting']} s per setting "
        f"({t['sweep_seconds']} s in all); one full run took {t['full_run_seconds']} s.",
    )
    rows = []
    for i in doc["pareto"]:
        s = doc["settings"][i]
        m = s["metrics"]
        mark = " **chosen**" if i == doc["chosen"] else ""
        rows.append(
            [
                f"{i}{mark}",
                m["alert_rate"],
                m["recall"],
                m["precision"],
                m["alerted_accounts"],
                m["cases"],
                _setting_text(s["setting"]),
            ]
        )
    out.heading("Pareto front (alert volume vs recall)").table(
        ["#", "alert rate", "recall", "precision", "accounts in cases", "cases", "setting"],
        rows,
        _fmt,
    )
    out.heading("Chosen")
    if doc["chosen"] is None:
        out.para(f"No setting stays within the alert budget of {doc['max_alert_rate']:.2%}.")
        return out.text()
    s = doc["settings"][doc["chosen"]]
    base = doc["settings"][0]["metrics"]
    out.para(
        f"Setting {doc['chosen']}: {_setting_text(s['setting'])}",
        f"Recall {_fmt(base['recall'])} → {_fmt(s['metrics']['recall'])}, alert rate "
        f"{_fmt(base['alert_rate'])} → {_fmt(s['metrics']['alert_rate'])} (defaults → chosen).",
    )
    out.table(
        ["typology", "defaults", "chosen"],
        [
            [typ, base["typologies"].get(typ), r]
            for typ, r in sorted(s["metrics"]["typologies"].items())
        ],
        _fmt,
    )
    if doc.get("patch"):
        out.para(f"Review and apply from the repository root: `git apply {doc['patch']}`")
    return out.text()


def scatter(doc: dict[str, Any], path: Path) -> None:
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "flows87-mpl"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(s["metrics"]["alert_rate"], s["metrics"]["recall"]) for s in doc["settings"]]
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, c="#9aa5b1", label="settings")
    front = [pts[i] for i in doc["pareto"]]
    ax.plot(
        [p[0] for p in front],
        [p[1] for p in front],
        "-o",
        c="#1f6feb",
        ms=4,
        drawstyle="steps-post",
        label="Pareto front",
    )
    ax.scatter([pts[0][0]], [pts[0][1]], marker="s", s=50, c="#444", label="defaults", zorder=3)
    if doc["chosen"] is not None:
        c = pts[doc["chosen"]]
        ax.scatter([c[0]], [c[1]], marker="*", s=160, c="#d1242f", label="chosen", zorder=4)
    ax.axvline(doc["max_alert_rate"], ls="--", c="#d1242f", lw=0.8, label="alert budget")
    ax.set_xlabel("alert volume (accounts in cases / accounts)")
    ax.set_ylabel("recall (suspicious accounts in cases)")
    ax.set_title("Sweep: alert volume vs recall")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def write(doc: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "sweep.json", "markdown": out / "sweep.md", "png": out / "pareto.png"}
    write_json(doc, paths["json"])
    tmp = paths["markdown"].with_suffix(".md.tmp")
    tmp.write_text(markdown(doc), encoding="utf-8")
    tmp.replace(paths["markdown"])
    scatter(doc, paths["png"])
    return paths
