"""The Pareto front of alert volume (lower is better) against recall (higher is better)."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(
    points: Sequence[tuple[float, float]], changes: Sequence[int] | None = None
) -> list[int]:
    """Indices of the points (alert_rate, recall) no other point dominates, by alert rate.

    A point dominates another when its alert rate is no higher and its recall no lower, and
    one of the two strictly better. Of equal points only one is kept: the one with the fewest
    `changes` (changed parameters), then the first.
    """
    n_changes = changes or [0] * len(points)
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], n_changes[i], i))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def choose(
    points: Sequence[tuple[float, float]], max_alert_rate: float, changes: Sequence[int]
) -> int | None:
    """The best recall within the alert budget (then the lower alert rate, then the fewer
    changed parameters, then the earlier point); None when no point is within the budget."""
    within = [i for i, (rate, _) in enumerate(points) if rate <= max_alert_rate]
    if not within:
        return None
    return min(within, key=lambda i: (-points[i][1], points[i][0], changes[i], i))
