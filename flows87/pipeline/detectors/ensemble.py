"""A PyOD ensemble over account features, with reasons an investigator can read.

Each model's scores are turned into ranks in [0, 1] before averaging, because the models' raw
scores live on unrelated scales. Features are log-scaled (amounts and counts are heavy-tailed)
and standardised robustly. The explanation of a flagged account lists the features in which it
is most extreme among all scored accounts, with its value, the typical value and its percentile.
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from flows87.errors import ConfigError
from flows87.pipeline.detectors import fast
from flows87.pipeline.detectors.explain import explain
from flows87.pipeline.features import BY_NAME, NUMERIC, RULES_DIR
from flows87.pipeline.rules.evaluate import empty_signals
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = RULES_DIR / "settings" / "detectors.yaml"
_MODULES = {
    "IForest": "pyod.models.iforest",
    "ECOD": "pyod.models.ecod",
    "COPOD": "pyod.models.copod",
    "HBOS": "pyod.models.hbos",
    "LOF": "pyod.models.lof",
    "KNN": "pyod.models.knn",
    "PCA": "pyod.models.pca",
    "LODA": "pyod.models.loda",
    "INNE": "pyod.models.inne",
    "CBLOF": "pyod.models.cblof",
    "GMM": "pyod.models.gmm",
}
_SEEDED = {"IForest", "INNE", "LODA", "CBLOF", "GMM", "PCA"}


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RankingSettings(BaseModel):
    """How the ensemble's score counts in the account ranking (`anomaly_risk`, see `_combine`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(0.0, ge=0, lt=1)
    """anomaly_risk of the most unusual account; 0 leaves the score a tie-breaker only."""
    tail: float = Field(0.1, gt=0, le=1)
    """Share of scored accounts with some anomaly_risk: it falls linearly from `weight` for the
    most unusual account to 0 at this share."""


class DetectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    window: str = "7d"
    contamination: float = Field(0.01, gt=0, lt=0.5)
    min_transactions: int = Field(3, ge=1)
    seed: int = 87
    models: list[ModelSpec] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    explain_top: int = Field(3, ge=1, le=10)
    ranking: RankingSettings = Field(default_factory=RankingSettings)


def load_settings(path: str | Path | None = None) -> DetectorSettings:
    path = Path(path) if path else DEFAULT_SETTINGS
    settings = load_yaml_model(path, DetectorSettings, "detector settings")
    for m in settings.models:
        if m.name not in _MODULES:
            raise ConfigError(
                f"unknown model {m.name!r}",
                file=path,
                field="models",
                hint=f"known: {', '.join(sorted(_MODULES))}",
            )
    for name in settings.exclude:
        if name not in BY_NAME:
            raise ConfigError(f"unknown feature {name!r}", file=path, field="exclude")
    return settings


@dataclass
class EnsembleResult:
    # account_id, anomaly_score (0..1, higher = more unusual), anomaly_risk, per-model ranks
    scores: pl.DataFrame
    signals: pl.DataFrame  # SIGNAL_SCHEMA rows for the accounts above the contamination quantile
    features_used: list[str] = field(default_factory=list)


def columns(present: list[str], settings: DetectorSettings) -> list[str]:
    """The features the ensemble may use among the `present` columns."""
    return [c for c in NUMERIC if c not in settings.exclude and c in present]


def matrix(features: pl.DataFrame, settings: DetectorSettings) -> pl.DataFrame:
    """One row per scored account of `features` (sorted by id): each usable feature's maximum
    over the window's periods. Matrices of contiguous runs of accounts concatenate to the
    matrix of them all."""
    return _matrix(features, settings, columns(features.columns, settings))


def _matrix(features: pl.DataFrame, settings: DetectorSettings, cols: list[str]) -> pl.DataFrame:
    """One row per account (sorted by id): the maximum of each feature over the window's periods.

    The feature table comes sorted by account, and a group-by told so cuts slices instead of
    hashing: four times faster on 500k accounts."""
    window = features.filter(pl.col("window") == settings.window)
    if not window["account_id"].is_sorted():
        window = window.sort("account_id", maintain_order=True)
    return (
        window.with_columns(pl.col("account_id").set_sorted())
        .group_by("account_id", maintain_order=True)
        .agg([pl.col(c).max() for c in cols])
        .filter((pl.col("in_count") + pl.col("out_count")) >= settings.min_transactions)
    )


def _informative(frame: pl.DataFrame, cols: list[str]) -> list[str]:
    """Columns with some data that are not constant."""
    if not frame.height:
        return []
    stats = frame.select([pl.col(c).drop_nulls().n_unique().alias(c) for c in cols]).row(
        0, named=True
    )
    return [c for c in cols if stats.get(c, 0) > 1]


def _log(frame: pl.DataFrame, used: list[str]) -> np.ndarray:
    """Signed log1p: heavy tails tamed. A NaN (a ratio 0/0 from an input we have not seen)
    counts as missing, like a null: one NaN made HBOS's histogram range fail on AMLGentex.

    One contiguous column per feature (Fortran order, as polars' `to_numpy` gives a frame),
    filled a column at a time: the whole logged frame beside its array cost a second copy."""
    x = np.empty((frame.height, len(used)), order="F")
    for j, c in enumerate(used):
        x[:, j] = _logged(frame, c)
    return x


def _logged(frame: pl.DataFrame, c: str) -> pl.Series:
    value = pl.col(c).cast(pl.Float64).fill_nan(None).fill_null(0.0)
    return frame.select((value.sign() * value.abs().log1p()).alias(c)).to_series()


# Ours: 500k x 100 in 1.23 s; scipy.stats.iqr 1.43 s, other last bits; RobustScaler 1.60 s
def _robust(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and IQR (the standard deviation, or 1, for columns without spread): scale-free.

    A column at a time (each contiguous in `x`, see `_log`): the same values numpy gives for
    the whole matrix along its contiguous axis, without its whole-matrix copies."""
    d = x.shape[1]
    med, q75, q25, std = np.empty(d), np.empty(d), np.empty(d), np.empty(d)
    for j in range(d):
        col = x[:, j]
        med[j] = np.median(col)
        q75[j], q25[j] = np.percentile(col, [75, 25])
        std[j] = col.std()
    iqr = np.subtract(q75, q25)
    scale = np.where(iqr > 0, iqr, np.where(std > 0, std, 1.0))
    return med, scale


def _rank01(values: np.ndarray) -> np.ndarray:
    """Each score's rank in (0, 1]; tied scores in account order, so every rank is distinct."""
    from scipy.stats import rankdata  # 0.6 s to import: not for every import of the detectors

    # rankdata would make a whole column NaN for one NaN score; rank it most unusual instead
    # (where a sort puts it), so one degenerate score cannot blank a model
    finite = np.where(np.isnan(values), np.inf, values)
    ranks: np.ndarray = rankdata(finite, method="ordinal") / len(values)
    return ranks


def _model(spec: ModelSpec, seed: int) -> Any:
    cls = getattr(importlib.import_module(_MODULES[spec.name]), spec.name)
    params = dict(spec.params)
    if spec.name in _SEEDED:
        params.setdefault("random_state", seed)
    return cls(**params)


_FAST_PARAMS = {"ECOD": set(), "COPOD": set(), "HBOS": {"n_bins", "alpha", "tol"}}
"""Models computed by flows87.pipeline.detectors.fast (PyOD's training scores, to the bit, in a quarter
of the time), with the parameters it understands; other models and parameters go to PyOD."""


def _fast_params(spec: ModelSpec) -> dict[str, Any] | None:
    """The model's parameters when `fast` computes it, else None (PyOD does)."""
    accepted = _FAST_PARAMS.get(spec.name)
    params = {k: v for k, v in spec.params.items() if k not in ("contamination", "n_jobs")}
    if accepted is None or not set(params) <= accepted:
        return None
    if spec.name == "HBOS" and isinstance(params.get("n_bins", 10), str):
        return None  # "auto" bins: PyOD's own path
    return params


@dataclass
class Fitted:
    """What scoring needs from the whole population: columns used, scaling, fitted models.

    Small enough to pickle and hand to the tasks that score one account partition each. In one
    process it also keeps the population's matrix (`population`), so scoring and combining the
    population it was fitted on build no matrix again; a pickle leaves it out and waits for any
    model still fitting."""

    settings: DetectorSettings
    used: list[str]
    med: np.ndarray
    scale: np.ndarray
    n: int
    models: dict[str, Any] = field(default_factory=dict)
    population: _Prepared | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["population"] = None
        state["models"] = {
            k: m.result() if isinstance(m, Future) else m for k, m in self.models.items()
        }
        return state


@dataclass
class _Prepared:
    """The window's matrix (one row per account, sorted by id) and its scaled values."""

    frame: pl.DataFrame
    x: np.ndarray


def _prepare_fit(
    pieces: list[pl.DataFrame],
    settings: DetectorSettings,
    *,
    for_parts: bool = True,
    pool: ThreadPoolExecutor | None = None,
    keep: bool = True,
) -> tuple[Fitted | None, list[str]]:
    """The fitted ensemble on the population's `matrix` in `pieces` (contiguous runs of accounts,
    consumed: the list is emptied, so the matrix is freed once scaled unless it is kept in the
    fitted ensemble, `keep`). ECOD and COPOD
    keep the sorted columns only `for_parts` (scoring partitions against the population);
    scoring the population itself needs only each value's rank, and their model is then None.

    With a `pool`, PyOD's models fit on it (their model is then a Future, which `_raw` waits
    for): an IForest scores its training data in compiled code that releases the GIL, so on two
    cores it runs beside the whole-column work of the other models."""
    frame = pl.concat(pieces, rechunk=False) if len(pieces) != 1 else pieces[0]
    pieces.clear()
    used = _informative(frame, [c for c in frame.columns if c != "account_id"])
    if frame.height < 20 or not used:
        return None, used
    frame = frame.select("account_id", *used)
    if keep:
        x, kept = _log(frame, used), frame
    else:  # each column freed once logged: the matrix and its array were never whole together
        x, kept = np.empty((frame.height, len(used)), order="F"), None
        for j, c in enumerate(used):
            x[:, j] = _logged(frame, c)
            frame = frame.drop(c)
    del frame  # only `x` is needed from here
    med, scale = _robust(x)
    x -= med  # in place: the values of (x - med) / scale without two more copies
    x /= scale
    fitted = Fitted(settings, used, med, scale, x.shape[0])
    tails = None
    for spec in settings.models:
        params = _fast_params(spec)
        if params is not None and spec.name == "HBOS":
            fitted.models[spec.name] = fast.hbos_fit(x, **params)
        elif params is not None:
            if tails is None and for_parts:
                tails = fast.fit_tails(x)  # ECOD and COPOD share the sorted columns
            fitted.models[spec.name] = tails
        elif pool is not None:
            fitted.models[spec.name] = pool.submit(_model(spec, settings.seed).fit, x)
        else:
            fitted.models[spec.name] = _model(spec, settings.seed).fit(x)
    if kept is not None:
        fitted.population = _Prepared(kept, x)
    return fitted, used


def _prepare(fitted: Fitted, features: pl.DataFrame) -> _Prepared:
    return _scaled(fitted, matrix(features, fitted.settings))


def _scaled(fitted: Fitted, frame: pl.DataFrame) -> _Prepared:
    missing = [c for c in fitted.used if c not in frame.columns]
    if missing:
        raise ConfigError(f"features missing for the fitted detectors: {', '.join(missing)}")
    frame = frame.select("account_id", *fitted.used)
    x = _log(frame, fitted.used)
    x -= fitted.med
    x /= fitted.scale
    return _Prepared(frame, x)


def fit(
    features: pl.DataFrame,
    settings: DetectorSettings,
    *,
    for_parts: bool = True,
    pool: ThreadPoolExecutor | None = None,
) -> Fitted | None:
    """Fit on every account of the window; None when there are too few accounts to judge.

    `for_parts`: keep what scoring other accounts than the population needs (sorted columns);
    without it, only the population can be scored (`raw_scores(fitted, None)`). With a `pool`,
    PyOD's models fit on it while the caller goes on (see `_prepare_fit`)."""
    return fit_matrix([matrix(features, settings)], settings, for_parts=for_parts, pool=pool)


def fit_matrix(
    pieces: list[pl.DataFrame],
    settings: DetectorSettings,
    *,
    for_parts: bool = True,
    pool: ThreadPoolExecutor | None = None,
    keep: bool = True,
) -> Fitted | None:
    """`fit` on the population's `matrix` in `pieces`, contiguous runs of accounts in order
    (built in batches of accounts by the caller), consumed; `keep` it in the fitted ensemble
    (`population`) or not, when it is too large to keep beside scoring (see
    flows87.pipeline.stages.detectors)."""
    fitted, _ = _prepare_fit(pieces, settings, for_parts=for_parts, pool=pool, keep=keep)
    return fitted


def _raw(fitted: Fitted, prep: _Prepared, start: int | None = None) -> pl.DataFrame:
    """`start`: the rows are the population's from `start` on (see `raw_scores`)."""
    if prep.frame.height == fitted.n:
        start = 0
    elif start is not None and start + prep.frame.height > fitted.n:
        raise ConfigError("rows beyond the fitted population")
    out: dict[str, np.ndarray] = {}
    tails = None
    # models still fitting on a pool (Futures) last: the others are scored meanwhile
    specs = sorted(fitted.settings.models, key=lambda m: isinstance(fitted.models[m.name], Future))
    for spec in specs:
        model = fitted.models[spec.name]
        if isinstance(model, Future):
            model = fitted.models[spec.name] = model.result()
        if isinstance(model, fast.FittedHBOS):
            raw = fast.hbos_score(model, prep.x)
        elif model is None or isinstance(model, fast.FittedTails):
            if tails is None:
                # the whole population: ranks alone give the same values as the sorted columns
                if prep.frame.height == fitted.n:
                    tails = fast.tails(prep.x)
                elif model is None:  # score() fits without them: it only scores its population
                    raise ConfigError("ECOD/COPOD were fitted without their sorted columns")
                else:
                    tails = fast.tails_of(model, prep.x)
            raw = (fast.ecod_scores if spec.name == "ECOD" else fast.copod_scores)(tails)
        elif start is not None:  # rows of the population: their training scores
            raw = model.decision_scores_[start : start + prep.frame.height]
        else:
            raw = model.decision_function(prep.x)
        out[f"raw_{spec.name.lower()}"] = np.asarray(raw, dtype=np.float64)
    names = [f"raw_{spec.name.lower()}" for spec in fitted.settings.models]
    return prep.frame.select("account_id").with_columns(pl.Series(k, out[k]) for k in names)


def raw_scores(
    fitted: Fitted, features: pl.DataFrame | None, start: int | None = None
) -> pl.DataFrame:
    """account_id and each model's raw score, for the accounts of `features` (any subset of the
    fitted population, e.g. one partition or a batch of its accounts; None: the whole
    population, from the matrix `fit` kept). A population member gets its training score.

    `start`: the accounts of `features` are the population's from its `start`-th on (a batch
    of a run of all accounts): PyOD's models give them their training scores instead of scoring
    them again (an IForest scoring 1.9M accounts again took most of the step)."""
    prep = _population(fitted) if features is None else _prepare(fitted, features)
    if prep.frame.height == 0:  # a batch or partition without scored accounts
        names = [f"raw_{spec.name.lower()}" for spec in fitted.settings.models]
        return pl.DataFrame(schema={"account_id": pl.String, **dict.fromkeys(names, pl.Float64)})
    return _raw(fitted, prep, start)


def _population(fitted: Fitted) -> _Prepared:
    if fitted.population is None:
        raise ConfigError("the fitted detectors no longer hold their population: give features")
    return fitted.population


def _combine(
    raw: pl.DataFrame, frame: pl.DataFrame, x: np.ndarray | None, fitted: Fitted
) -> EnsembleResult:
    """`frame`: the population's matrix; `x` its scaled values (None: only the flagged
    accounts' are computed)."""
    settings = fitted.settings
    raw = raw.sort("account_id")
    if not frame["account_id"].equals(raw["account_id"]):
        raise ConfigError("detector scores and features cover different accounts")
    ranks = {
        f"rank_{spec.name.lower()}": _rank01(raw[f"raw_{spec.name.lower()}"].to_numpy())
        for spec in settings.models
    }
    combined = np.mean(np.column_stack(list(ranks.values())), axis=1)
    scores = raw.select("account_id").with_columns(
        pl.Series("anomaly_score", combined),
        pl.Series("anomaly_risk", anomaly_risk(combined, settings.ranking)),
        *[pl.Series(k, v) for k, v in ranks.items()],
    )
    # Exactly the top share, ties broken by account order (the frame is sorted by account_id).
    k = max(1, int(round(len(combined) * settings.contamination)))
    flagged = np.sort(np.argsort(-combined, kind="stable")[:k])
    frame = frame.select("account_id", *fitted.used)
    # without `x`, the flagged rows scaled alone: the same values as the whole matrix's rows
    x_flagged = _scaled(fitted, frame[flagged]).x if x is None else x[flagged]
    names = ", ".join(m.name for m in settings.models)
    signals = explain(
        frame,
        fitted.used,
        x_flagged,
        combined,
        flagged,
        names,
        settings.window,
        settings.explain_top,
    )
    return EnsembleResult(scores, signals, fitted.used)


def anomaly_risk(combined: np.ndarray, ranking: RankingSettings) -> np.ndarray:
    """Each account's weight in the account ranking, from its place in the population: with u
    the share of scored accounts at least as unusual as it (1/n for the most unusual one),
    `weight` x max(0, 1 - u / `tail`).

    A percentile, not the raw score, so it means the same on any population: "among the top
    1 % of all accounts" is as specific as a rule that fires on 1 % of them. The ranking
    (flows87.pipeline.stages.cases.scored_accounts) combines it with the evidence of accounts in no case,
    so a strong anomaly is not outranked by a weak uncorroborated signal. Tied accounts all
    count the whole tied group."""
    n = len(combined)
    if n == 0 or ranking.weight == 0:
        return np.zeros(n)
    ordered = np.sort(combined)
    at_least = n - np.searchsorted(ordered, combined, side="left")  # accounts scoring >= it
    return ranking.weight * np.clip(1.0 - (at_least / n) / ranking.tail, 0.0, 1.0)


def combine(raw: pl.DataFrame, features: pl.DataFrame | None, fitted: Fitted) -> EnsembleResult:
    """Rank each model's scores over all accounts, average, flag the top share, explain them
    (`features` None: those of the population `fit` kept)."""
    if features is None:
        prep = _population(fitted)
        return _combine(raw, prep.frame, prep.x, fitted)
    return combine_matrix(raw, matrix(features, fitted.settings), fitted)


def combine_matrix(raw: pl.DataFrame, frame: pl.DataFrame, fitted: Fitted) -> EnsembleResult:
    """`combine` given the population's matrix (built in batches of accounts by the caller):
    only the flagged accounts' scaled values are computed."""
    return _combine(raw, frame, None, fitted)


def _empty(used: list[str]) -> EnsembleResult:
    empty = pl.DataFrame(
        schema={"account_id": pl.String, "anomaly_score": pl.Float64, "anomaly_risk": pl.Float64}
    )
    return EnsembleResult(empty, empty_signals(), used)


def score(features: pl.DataFrame, settings: DetectorSettings) -> EnsembleResult:
    """fit, raw_scores and combine in one go (the unpartitioned stage), the matrix built once."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        fitted, used = _prepare_fit(
            [matrix(features, settings)], settings, for_parts=False, pool=pool
        )
        if fitted is None or fitted.population is None:
            return _empty(used)
        prep = fitted.population
        raw = _raw(fitted, prep)
    return _combine(raw, prep.frame, prep.x, fitted)
