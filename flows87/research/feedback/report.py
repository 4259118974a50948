"""Feedback outputs: feedback.json (everything), feedback.md (for the researcher), patches/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows87.document import Markdown
from flows87.io import write_json, write_text


def markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    out = Markdown(f"Feedback for rules: {doc['run_dir']}").para(
        f"Dispositions: {doc['decided_cases']} decided cases in the case store · precision per "
        f"{s['period']} · rules: `{doc['rules_dir']}`",
        f"A rule is looked at for a cluster from {s['min_false_positives']} false positives "
        f"(and {s['min_reported']} reported) among its decided hits in this run; a threshold "
        f"keeps at least {s['keep_reported']:.0%} of the reported hits and is suggested when it "
        f"removes at least {s['min_removed']:.0%} of the false positives.",
    )
    rows = []
    for sid, r in doc["rules"].items():
        rows.append(
            [
                f"`{sid}`",
                r["decided_cases"],
                r["reported"],
                r["false_positive"],
                r["precision"],
                r["last"],
                r["trend"] + (f" ({r['slope']:+.3f})" if r["slope"] is not None else ""),
                (r.get("suggestion") or {}).get("kind") or "",
            ]
        )
    header = ["rule", "decided", "reported", "false pos.", "precision", "last", "trend", "suggests"]
    out.heading("Precision by rule").table(header, rows)
    for sid, r in doc["rules"].items():
        out.heading(f"`{sid}`", level=3)
        out.table(
            ["period", "decided", "reported", "false pos.", "no action", "precision"],
            [
                [
                    p["period"],
                    p["decided"],
                    p["reported"],
                    p["false_positive"],
                    p["no_further_action"],
                    p["precision"],
                ]
                for p in r["by_period"]
            ],
        )
        c = r.get("cluster")
        if c is None:
            continue
        out.para(
            f"Decided hits in this run (accounts the rule fired on, in decided cases): "
            f"{c['reported']} reported ({c['reported_cases']} cases), {c['false_positives']} "
            f"false positives ({c['false_positive_cases']} cases), {c['no_further_action']} "
            f"without action. {c['note']}".strip()
        )
        if c["top"]:
            out.table(
                ["threshold", "reported kept", "false pos. removed", "share removed"],
                [
                    [
                        f"`{t['condition']}`",
                        f"{t['reported_kept']}/{t['reported']}",
                        f"{t['fp_removed']}/{t['false_positives']}",
                        t["fp_removed_share"],
                    ]
                    for t in c["top"]
                ],
            )
        sug = r.get("suggestion")
        if sug:
            out.para(f"**Suggestion:** {sug['text']}.")
            if sug.get("patch_file"):
                out.para(
                    f"Review and apply from `{doc['patch_root']}`: `git apply {sug['patch_file']}`"
                )
    return out.text()


def write(doc: dict[str, Any], out: Path) -> dict[str, Path]:
    """feedback.json, feedback.md and one patch per parameter suggestion in patches/ (a previous
    run's patches are removed first, so the folder holds this run's suggestions only)."""
    folder = out / "patches"
    if folder.exists():
        for old in folder.glob("*.patch"):
            old.unlink()
    paths: dict[str, Path] = {}
    for sid, r in doc["rules"].items():
        sug = r.get("suggestion")
        if sug and sug.get("patch"):
            path = write_text(sug["patch"], folder / f"{sid}.patch")
            sug["patch_file"] = str(path)
            paths[f"patch:{sid}"] = path
    paths["json"] = write_json(doc, out / "feedback.json")
    paths["markdown"] = write_text(markdown(doc), out / "feedback.md")
    return paths
