"""The shape benchmark's report: bench_shapes.md (the tables) beside bench_shapes.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import RUN_STAGES, top_steps, write_results

from flows87.document import table as md_table


def mb(x: float | None) -> str:
    return "–" if x is None else f"{x / 1024:.1f} GB" if x >= 1024 else f"{x:.0f} MB"


def num(x: Any, fmt: str = ",") -> str:
    return "–" if x is None else format(x, fmt)


def table(results: dict[str, Any]) -> str:
    shapes = results["shapes"]
    ref = shapes.get("random", {})
    ref_ok = ref.get("run") if ref.get("status") == "ok" else None
    head = [
        "shape",
        "transactions",
        "accounts (active)",
        "status",
        "wall s",
        "x random",
        "CPU s",
        "CPU x random",
        "peak RSS",
        "slowest stages (s)",
        "cases",
        "accounts in cases",
        "alert rate",
        "largest case",
        f"rules on > {results['flood']:.0%} of accounts",
    ]
    rows = []
    for name, r in shapes.items():
        s, run = r["synth"], r["run"]
        slow = sorted(r["stage_s"].items(), key=lambda kv: -kv[1])[:3]
        flood = flooding(r)
        rows.append(
            [
                name,
                f"{s['transactions']:,}",
                f"{s['accounts']:,} ({s['active_accounts']:,})",
                r["status"] if not r["error"] else f"{r['status']}: {r['error']}",
                f"{run['wall_s']:.1f}",
                f"{run['wall_s'] / ref_ok['wall_s']:.2f}" if ref_ok else "–",
                f"{run['cpu_s']:.0f}",
                f"{run['cpu_s'] / ref_ok['cpu_s']:.2f}" if ref_ok else "–",
                mb(run["peak_rss_mb"]),
                ", ".join(f"{k} {v:.1f}" for k, v in slow),
                num(r.get("cases")),
                num(r.get("accounts_in_cases")),
                num(r.get("alert_rate"), ".2%"),
                num(r.get("largest_case")),
                flood,
            ]
        )
    out = [md_table(head, rows, str)]
    out += ["", "Seconds per stage (a stage cut short is marked *):", ""]
    per_stage = []
    for name, r in shapes.items():
        cells = []
        for st in RUN_STAGES:
            if st in r["stage_s"]:
                bad = r["stage_status"][st] != "succeeded"
                cells.append(f"{r['stage_s'][st]:.1f}{'*' if bad else ''}")
            elif r["run"]["killed"] and r["run"]["stage_at_end"] == st:
                cells.append("*")
            else:
                cells.append("–")
        per_stage.append([name, *cells, f"{r['run']['wall_s']:.1f}"])
    out.append(md_table(["shape", *RUN_STAGES, "total"], per_stage, str))
    out += ["", "Slowest steps of the slowest stage, peak RSS per stage:", ""]
    for name, r in shapes.items():
        if r["stage_s"]:
            st = max(r["stage_s"], key=r["stage_s"].get)
            peaks = ", ".join(f"{k} {mb(v)}" for k, v in r["run"]["stage_peak_rss_mb"].items())
            out.append(f"- {name}: {st}: {top_steps(r['steps_s'].get(st, {})) or '–'}; RSS {peaks}")
    out += [""]
    for name, r in shapes.items():
        if "hub" in r:
            hub = r["hub"]
            case = hub["case_accounts"]
            held = (
                "–" if case is None else f"in a case of {case:,} accounts" if case else "in no case"
            )
            out.append(
                f"- {name}: the hub {hub['account']} has signals "
                f"{', '.join(hub['signals']) or 'none'}; it is {held}"
            )
        if "chain" in r:
            c = r["chain"]
            line = (
                f"- {name}: {c['chain_accounts']:,} chain accounts, "
                f"{c['chain_accounts_with_signals']:,} with a signal"
            )
            if "chain_accounts_in_cases" in c:
                line += (
                    f", {c['chain_accounts_in_cases']:,} in cases; "
                    f"{c['cases_with_chain_accounts']:,} cases hold chain accounts, the largest of"
                    f" them has {c['largest_chain_case_accounts']:,} accounts, and at most"
                    f" {c['most_chain_accounts_in_a_case']:,} chain accounts are in one case"
                )
            out.append(line)
    return "\n".join(out)


def flooding(r: dict[str, Any]) -> str:
    """Flooding rules with their share of the active accounts (and of their accounts labelled
    suspicious, when the data is labelled)."""
    parts = []
    for k, v in r["flooding"].items():
        part = f"{k} {v['share']:.0%}"
        if "suspicious" in v:
            part += f" ({v['suspicious'] / v['accounts']:.0%} labelled)"
        parts.append(part)
    return ", ".join(parts) or "none"


def write_report(results: dict[str, Any], out: Path) -> None:
    write_results(results, out / "bench_shapes.json")
    text = (
        f"# flows87 shape benchmark\n\n{results['started_at']}, {results['cores']} cores, "
        f"pipeline of commit {results['commit']}, --transactions {results['transactions_requested']:,}"
        f"{' --small' if results['small'] else ''}, seed {results['seed']}, "
        f"time limit {results['timeout_s']:.0f} s, memory guard {results['max_rss_gb']} GB\n\n"
        + table(results)
        + "\n"
    )
    (out / "bench_shapes.md").write_text(text)
