"""What a sweep may change, and the settings it tries.

A parameter is named `<rule_id>.<param>` (a rule file's `params`, with the range the file
declares) or `detectors.<name>` / `scoring.<name>` (settings files; their ranges are below,
within what the settings models accept). A *setting* maps parameter names to values and holds
only the values that differ from the defaults; the empty setting is the run as it was.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flows87.errors import ConfigError
from flows87.pipeline.rules import LoadedRule

SETTINGS_RANGES: dict[str, dict[str, tuple[float, float, str]]] = {
    "detectors": {"contamination": (0.002, 0.05, "float")},
    "scoring": {
        "min_risk": (0.2, 0.9, "float"),
        "min_families": (1, 3, "int"),
        "neighbour_share": (0.0, 0.5, "float"),
        "strong_signal": (0.5, 1.0, "float"),
    },
}
"""Settings-file parameters a sweep may change: (min, max, type). Only `detectors.contamination`
is swept unless named with --params: the rest change how every signal scores."""

DEFAULT_SETTINGS_PARAMS = ("detectors.contamination",)


@dataclass(frozen=True)
class SweepParam:
    key: str  # "<rule_id>.<param>", "detectors.<name>" or "scoring.<name>"
    default: float
    min: float
    max: float
    type: str  # "int" | "float"
    file: Path | None = None
    """The YAML file holding the default (the rule file or settings file)."""

    @property
    def owner(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def is_rule(self) -> bool:
        return self.owner not in SETTINGS_RANGES

    def clean(self, value: float) -> float | int:
        """A value in range, whole for int parameters, floats to 3 significant digits."""
        v = min(max(float(value), self.min), self.max)
        if self.type == "int":
            return int(round(v))
        if v != 0:
            v = round(v, 2 - int(math.floor(math.log10(abs(v)))))
        return min(max(v, self.min), self.max)

    def levels(self, n: int) -> list[float | int]:
        """n values over the range (ends included), without duplicates: evenly spaced, or
        geometrically when the range spans more than a factor 20 (counts, amounts)."""
        n = max(n, 2)
        if self.min > 0 and self.max / self.min > 20:
            points = np.geomspace(self.min, self.max, n)
        else:
            points = np.linspace(self.min, self.max, n)
        vals = [self.clean(v) for v in points]
        return sorted(set(vals))


def parameter_space(
    rules: list[LoadedRule], settings_files: dict[str, Path], settings_values: dict[str, dict]
) -> dict[str, SweepParam]:
    """Every parameter a sweep may change, by key."""
    space: dict[str, SweepParam] = {}
    for item in rules:
        rule = item.rule
        if rule.status == "deprecated":
            continue
        for name, p in rule.params.items():
            if p.min == p.max:
                continue
            key = f"{rule.id}.{name}"
            space[key] = SweepParam(key, p.default, p.min, p.max, p.type, item.path)
    for owner, ranges in SETTINGS_RANGES.items():
        for name, (lo, hi, typ) in ranges.items():
            default = settings_values.get(owner, {}).get(name)
            if default is None:
                continue
            space[f"{owner}.{name}"] = SweepParam(
                f"{owner}.{name}",
                float(default),
                min(lo, float(default)),
                max(hi, float(default)),
                typ,
                settings_files.get(owner),
            )
    return space


def select(space: dict[str, SweepParam], names: list[str] | None) -> list[SweepParam]:
    """The parameters named (`rule.param`, `rule` or `rule.*` for all of a rule's); every rule
    parameter and detectors.contamination when none are named."""
    if not names:
        return [p for k, p in space.items() if p.is_rule or k in DEFAULT_SETTINGS_PARAMS]
    chosen: dict[str, SweepParam] = {}
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            owner, _, param = name.partition(".")
            if param in ("", "*"):
                hits = [p for p in space.values() if p.owner == owner]
            else:
                hits = [space[name]] if name in space else []
            if not hits:
                known = sorted({p.owner for p in space.values()})
                raise ConfigError(
                    f"no sweepable parameter {name!r}",
                    hint="name one as rule_id.param (a rule's params with min < max), rule_id "
                    f"for all of a rule's, detectors.contamination or scoring.min_risk; "
                    f"owners: {', '.join(known[:8])}, ...",
                )
            for p in hits:
                chosen[p.key] = p
    return list(chosen.values())


def _changes(params: list[SweepParam], values: tuple) -> dict[str, float | int]:
    return {p.key: v for p, v in zip(params, values, strict=True) if v != p.clean(p.default)}


def grid(params: list[SweepParam], levels: int, max_settings: int) -> tuple[list[dict], str]:
    """The full grid when it has at most `max_settings` points, otherwise each parameter over
    its levels with the others at their defaults ("one at a time")."""
    per = [sorted({*p.levels(levels), p.clean(p.default)}) for p in params]
    size = math.prod(len(v) for v in per)
    out: list[dict] = []
    if size <= max_settings:
        mode = "grid"
        for values in itertools.product(*per):
            out.append(_changes(params, values))
    else:
        mode = "one-at-a-time"
        for p, vals in zip(params, per, strict=True):
            out.extend({p.key: v} for v in vals if v != p.clean(p.default))
    return _unique(out), mode


def random(params: list[SweepParam], n: int, seed: int, vary: int | None) -> list[dict]:
    """n settings, each drawing `vary` of the parameters (all when None) uniformly in range."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    for _ in range(n):
        chosen = params
        if vary is not None and vary < len(params):
            idx = sorted(rng.choice(len(params), size=vary, replace=False))
            chosen = [params[i] for i in idx]
        setting = {}
        for p in chosen:
            if p.type == "int":
                v = p.clean(int(rng.integers(int(p.min), int(p.max) + 1)))
            else:
                v = p.clean(rng.uniform(p.min, p.max))
            if v != p.clean(p.default):
                setting[p.key] = v
        out.append(setting)
    return _unique(out)


def _unique(settings: list[dict]) -> list[dict]:
    seen, out = set(), []
    for s in settings:
        key = tuple(sorted(s.items()))
        if key in seen or not s:
            continue
        seen.add(key)
        out.append(s)
    return out
