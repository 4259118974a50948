"""Rule and detector parameter sweeps over one run, reusing its features and transactions.

    result = sweep("runs/2026-01", grid_levels=3, params=["ml_fan_in.min_counterparties"])

evaluates each setting (`SweepContext.evaluate`), reports the Pareto front of alert volume vs
recall (sweep.json, sweep.md, pareto.png) and writes the best recall within the alert budget
as chosen.patch, a diff of the rule files' defaults (never the rule files themselves).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows87.errors import ConfigError
from flows87.io import write_text
from flows87.research.sweep import report as _report
from flows87.research.sweep.engine import Outcome, SweepContext, full_run_seconds
from flows87.research.sweep.pareto import choose, pareto_front
from flows87.research.sweep.patch import make_patch, repo_root
from flows87.research.sweep.space import SweepParam, grid, random, select

__all__ = [
    "Outcome",
    "SweepContext",
    "SweepParam",
    "SweepResult",
    "choose",
    "make_patch",
    "pareto_front",
    "sweep",
]


@dataclass
class SweepResult:
    doc: dict[str, Any]
    outcomes: list[Outcome]
    chosen: int | None
    paths: dict[str, Path]
    patch: str


def sweep(
    run_dir: str | Path,
    *,
    rules_dir: str | Path | None = None,
    out: str | Path | None = None,
    params: list[str] | None = None,
    grid_levels: int | None = 3,
    random_n: int | None = None,
    seed: int = 0,
    vary: int | None = None,
    max_settings: int = 200,
    max_alert_rate: float = 0.02,
    population: str = "all",
    patch_root: str | Path | None = None,
    context: SweepContext | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Evaluate the defaults and each setting of a grid (or `random_n` seeded draws)."""
    if not 0 < max_alert_rate <= 1:
        raise ConfigError("the alert budget must be in (0, 1]", field="max_alert_rate")
    ctx = context or SweepContext(run_dir, rules_dir, population=population)
    chosen_params = select(ctx.space, params)
    if random_n:
        settings = random(
            chosen_params, random_n, seed, vary if vary or params else min(3, len(chosen_params))
        )
        mode = f"random ({random_n} draws, seed {seed})"
    else:
        settings, mode = grid(chosen_params, grid_levels or 3, max_settings)
    settings = [{}, *settings]
    outcomes: list[Outcome] = []
    t0 = time.perf_counter()
    for i, setting in enumerate(settings):
        outcomes.append(ctx.evaluate(setting))
        if progress:
            progress(i + 1, len(settings))
    total = time.perf_counter() - t0
    points = [(o.metrics["alert_rate"], o.metrics["recall"]) for o in outcomes]
    n_changes = [len(o.setting) for o in outcomes]
    front = pareto_front(points, n_changes)
    best = choose(points, max_alert_rate, n_changes)
    full = full_run_seconds(ctx.run_dir)
    per = total / len(outcomes)
    doc: dict[str, Any] = {
        "run_dir": str(ctx.run_dir),
        "rules_dir": str(ctx.rules_dir),
        "mode": mode,
        "seed": seed,
        "population": ctx.population,
        "max_alert_rate": max_alert_rate,
        "parameters": [
            {"key": p.key, "default": p.default, "min": p.min, "max": p.max, "type": p.type}
            for p in chosen_params
        ],
        "settings": [
            {
                "index": i,
                "setting": o.setting,
                "metrics": o.metrics,
                "seconds": o.seconds,
                "rules_evaluated": o.rules_evaluated,
            }
            for i, o in enumerate(outcomes)
        ],
        "pareto": front,
        "chosen": best,
        "timing": {
            "setup_seconds": ctx.setup_seconds,
            "sweep_seconds": round(total, 3),
            "mean_seconds_per_setting": round(per, 4),
            "full_run_seconds": full,
            "setting_vs_full_run": round(per / full, 4) if full else None,
        },
        "patch": None,
    }
    patch = ""
    paths: dict[str, Path] = {}
    if out is not None:
        out = Path(out)
        (out / "chosen.patch").unlink(missing_ok=True)  # a previous sweep's choice
        if best is not None and outcomes[best].setting:
            root = Path(patch_root) if patch_root else repo_root(ctx.rules_dir)
            patch = make_patch(outcomes[best].setting, ctx.space, root)
            write_text(patch, out / "chosen.patch")
            paths["patch"] = out / "chosen.patch"
            doc["patch"] = str(out / "chosen.patch")
            doc["patch_root"] = str(root.resolve())
        paths.update(_report.write(doc, out))
    elif best is not None and outcomes[best].setting:
        patch = make_patch(
            outcomes[best].setting, ctx.space, Path(patch_root) if patch_root else None
        )
    return SweepResult(doc, outcomes, best, paths, patch)
