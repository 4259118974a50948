"""The learning curve: what investigators' decisions on a tuning period buy on the next period.

Simulated investigators review the tuning run's cases in rank order and decide each case's
accounts by the period's truth (labels.py); after N cases the learned scorer is trained on those
labels over the tuning run's account matrix and scores the report run's accounts. Each point
measures, over the report run's active accounts (the population `flows87 bench` measures):
today's ranking (risk as the run wrote it, before any blend), the learned score alone, and the
blend (`blend_accounts`, learning.yaml's blend_weight), with the label counts trained on. The
last point trains on every labelled account of the tuning period. No label of the report period
ever reaches training (`labels.check_no_leak` runs before each fit).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import ConfigError
from flows87.pipeline.cases import load_settings as load_scoring
from flows87.pipeline.learn import account_matrix, blend_accounts
from flows87.pipeline.learn import model as models
from flows87.pipeline.learn.blend import critical_accounts
from flows87.research.bench.metrics import ranking_metrics
from flows87.research.bench.runfiles import active_accounts
from flows87.research.learning.labels import KEY, check_no_leak, reviewed_labels
from flows87.rundir import RunDir

CASES = (10, 50, 200, 1000)
METHODS = ("xgboost", "xgbod")
KEPT = ("pr_auc", "precision_at_budget", "recall_at_budget")

Say = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def today_scored(run_dir: Path) -> pl.DataFrame:
    """accounts_scored with `risk_score` as today's ranking: the learn step's `today_score`
    when it blended a model in."""
    scored = pl.read_parquet(RunDir(run_dir).accounts_scored)
    if "today_score" in scored.columns:
        scored = scored.with_columns(pl.col("today_score").alias("risk_score"))
    return scored.drop("today_score", "learned_score", "learned_reasons", strict=False)


def run_matrix(run_dir: Path, scored: pl.DataFrame) -> pl.DataFrame:
    """The run's account matrix as the learn step builds it, from today's ranking."""
    run = RunDir(run_dir)
    features = pl.read_parquet(run.features) if run.features.exists() else None
    anomaly = pl.read_parquet(run.anomaly_scores) if run.anomaly_scores.exists() else None
    matrix = account_matrix(scored, features, pl.read_parquet(run.signals), anomaly)
    leaked = [c for c in matrix.columns if "suspicious" in c or "typology" in c]
    assert not leaked, f"label columns in the account matrix: {leaked}"
    return matrix


def population(test_dir: Path) -> pl.DataFrame:
    """The report run's active accounts with their labels (as `flows87 bench` measures)."""
    scored = pl.read_parquet(RunDir(test_dir).accounts_scored)
    cols = [c for c in (KEY, "is_suspicious", "typology") if c in scored.columns]
    return (
        active_accounts(test_dir)
        .join(scored.select(cols), on=KEY, how="left")
        .with_columns(pl.col("is_suspicious").fill_null(False))
    )


def measure(pop: pl.DataFrame, scores: pl.DataFrame, budget: float) -> dict[str, Any]:
    """PR-AUC, precision and recall at the budget of `scores` (account_id, score) over `pop`;
    an account without a score ties with the lowest (as the bench's baselines)."""
    frame = pop.join(scores.select(KEY, "score"), on=KEY, how="left")
    low = scores["score"].min()
    fill = float(low) if isinstance(low, (int, float)) else 0.0
    frame = frame.with_columns(pl.col("score").fill_null(fill))
    m = ranking_metrics(frame.select(KEY, "score", "is_suspicious"), budget)
    return {k: m[k] for k in KEPT}


def keyed(frame: pl.DataFrame, i: int) -> pl.DataFrame:
    """account_id as `<i>/<account_id>`: the same account in two tuning runs is two rows."""
    return frame.with_columns((pl.lit(f"{i}/") + pl.col(KEY)).alias(KEY))


class Split:
    """Tuning runs (in time order, each as long as the report run) and the report run, read
    once: the tuning rows, the report run's matrix, today's scores, the population."""

    def __init__(
        self, train_dirs: Sequence[Path], test_dir: Path, scoring: Path | None = None
    ) -> None:
        self.train_dirs, self.test_dir = [Path(d) for d in train_dirs], Path(test_dir)
        self.train_matrix = pl.concat(
            [keyed(run_matrix(d, today_scored(d)), i) for i, d in enumerate(self.train_dirs)],
            how="diagonal_relaxed",
        )
        self.test_scored = today_scored(self.test_dir)
        self.test_matrix = run_matrix(self.test_dir, self.test_scored)
        self.pop = population(self.test_dir)
        strong = load_scoring(scoring).strong_signal
        signals = pl.read_parquet(RunDir(self.test_dir).signals)
        self.critical = critical_accounts(signals, strong)
        self.today = self.test_scored.select(KEY, pl.col("risk_score").alias("score"))
        self.cases = sum(
            pl.scan_parquet(RunDir(d).cases).select(pl.len()).collect().item()
            for d in self.train_dirs
        )

    def labels(self, n_cases: int | None) -> tuple[pl.DataFrame, int]:
        """Labels after reviewing `n_cases` (None: every labelled account), run by run in time
        order, each run's cases in rank order; keyed as the tuning rows."""
        frames, reviewed = [], 0
        for i, d in enumerate(self.train_dirs):
            left = None if n_cases is None else n_cases - reviewed
            if left is not None and left <= 0:
                break
            labels, seen = reviewed_labels(d, left)
            check_no_leak(labels, d, self.test_dir)
            frames.append(keyed(labels, i))
            reviewed += seen
        return pl.concat(frames), reviewed

    def unreviewed(self, n: int, seed: int) -> pl.DataFrame:
        """`n` tuning-run accounts in no case, labelled negative without looking at the truth
        (no investigator saw them: presumed innocent), drawn with `seed`; keyed as the rows."""
        frames = []
        for i, d in enumerate(self.train_dirs):
            cased = pl.read_parquet(RunDir(d).cases, columns=["accounts"])
            in_case = cased.select(pl.col("accounts").alias(KEY)).explode(KEY)
            active = active_accounts(d).join(in_case, on=KEY, how="anti")
            frames.append(keyed(active, i))
        pool = pl.concat(frames).sort(KEY)
        picked = pool.sample(min(n, pool.height), seed=seed, shuffle=True)
        return picked.with_columns(pl.lit(False).alias("label"))

    def point(
        self, labels: pl.DataFrame, settings: models.LearnSettings, budget: float
    ) -> dict[str, Any]:
        """learned and blended metrics trained on `labels`; None where too few to train."""
        pos = int(labels["label"].sum())
        out: dict[str, Any] = {"positives": pos, "negatives": labels.height - pos}
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # xgbod's ECOD takes the skewness of columns constant over a few labelled rows
                warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
                fitted = models.train(self.train_matrix, labels, settings)
        except ConfigError as exc:
            return {**out, "learned": None, "blend": None, "why": exc.message}
        learned = models.score(fitted, self.test_matrix)
        blended = blend_accounts(self.test_scored, learned, self.critical, settings.blend_weight)
        out["learned"] = measure(self.pop, learned.rename({"learned_score": "score"}), budget)
        out["blend"] = measure(
            self.pop, blended.select(KEY, pl.col("risk_score").alias("score")), budget
        )
        out["seconds"] = round(time.perf_counter() - t0, 2)
        return out


def learning_curve(
    train_dirs: Path | Sequence[Path],
    test_dir: Path,
    *,
    budget: float = 0.01,
    cases: Sequence[int] = CASES,
    methods: Sequence[str] = METHODS,
    settings: models.LearnSettings | None = None,
    scoring: Path | None = None,
    gfp: bool = False,
    gfp_patterns: tuple[str, ...] | None = None,
    gfp_timeout: float | None = None,
    unreviewed: int = 0,
    say: Say = _quiet,
) -> dict[str, Any]:
    """`unreviewed`: also train the first method on each case point's labels plus that many
    accounts no case named, as negatives (`Split.unreviewed`). The curve over `cases` reviewed (capped by the cases the tuning runs have) and all
    labels, for each method; with `gfp`, the GFP + XGBoost baseline trained on the same labels.
    `train_dirs`: one tuning run, or several consecutive ones before the report run."""
    settings = settings or models.load_settings()
    dirs = [train_dirs] if isinstance(train_dirs, (str, Path)) else list(train_dirs)
    split = Split(dirs, test_dir, scoring)
    n_cases = split.cases
    points: list[tuple[str, pl.DataFrame, int]] = []
    for n in cases:
        labels, reviewed = split.labels(n)
        points.append((str(n), labels, reviewed))
    labels, _ = split.labels(None)
    points.append(("all", labels, n_cases))
    doc: dict[str, Any] = {
        "train_runs": [str(d) for d in dirs],
        "test_run": str(test_dir),
        "budget": budget,
        "blend_weight": settings.blend_weight,
        "method_in_use": settings.method,
        "tuning_cases": n_cases,
        "test_accounts": split.pop.height,
        "test_suspicious": int(split.pop["is_suspicious"].sum()),
        "columns": [p[0] for p in points],
        "labels": {
            name: {
                "cases_reviewed": reviewed,
                "accounts": lab.height,
                "positives": int(lab["label"].sum()),
            }
            for name, lab, reviewed in points
        },
        "today": measure(split.pop, split.today, budget),
        "methods": {},
    }
    for method in methods:
        chosen = settings.model_copy(update={"method": method})
        doc["methods"][method] = {}
        for name, lab, _ in points:
            doc["methods"][method][name] = split.point(lab, chosen, budget)
            got = doc["methods"][method][name]["blend"]
            say(f"{method} after {name} cases: blend {got and got['pr_auc']}")
    if unreviewed and methods:
        chosen = settings.model_copy(update={"method": methods[0]})
        extra = split.unreviewed(unreviewed, settings.seed)
        variant = f"{methods[0]} + {unreviewed:,} unreviewed as negatives"
        doc["methods"][variant] = {
            name: split.point(pl.concat([lab, extra.join(lab, on=KEY, how="anti")]), chosen, budget)
            if name != "all"
            else doc["methods"][methods[0]][name]
            for name, lab, _ in points
        }
    if gfp:
        from flows87.research.bench.baseline import measure_gfp_supervised

        doc["gfp"] = measure_gfp_supervised(
            split.train_dirs,
            split.test_dir,
            split.pop,
            budget,
            {name: lab for name, lab, _ in points},
            settings,
            gfp_patterns,
            say,
            gfp_timeout,
        )
    return doc
