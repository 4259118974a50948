"""Train, save, load and apply the learned scorer (settings: rules/settings/learning.yaml).

Two methods, chosen by `method:` after measurement (benchmarks/bench_learn.py):
- `xgboost`: gradient-boosted trees over the account matrix, whose `anomaly:*` columns are the
  run's PyOD ensemble fitted on the whole population: XGBOD's idea (unsupervised outlier scores
  as features of a boosted classifier) with the detectors fitted where they belong.
- `xgbod`: PyOD's XGBOD as published, whose detectors are fitted on the labelled rows only.
Deterministic for a seed: one thread, no row or column sampling.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from flows87.errors import ConfigError
from flows87.pipeline.features import RULES_DIR
from flows87.pipeline.learn.matrix import KEY
from flows87.settings import load_yaml_model

DEFAULT_SETTINGS = RULES_DIR / "settings" / "learning.yaml"


class LearnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    method: Literal["xgboost", "xgbod"] = "xgboost"
    min_positives: int = Field(5, ge=1)
    min_negatives: int = Field(5, ge=1)
    retrain_min_new: int = Field(20, ge=1)
    presumed_negatives: int = Field(50000, ge=0)
    history_days: int = Field(365, ge=0)
    n_estimators: int = Field(200, ge=1)
    max_depth: int = Field(2, ge=1, le=12)
    learning_rate: float = Field(0.1, gt=0, le=1)
    seed: int = 0
    blend_weight: float = Field(0.85, ge=0, le=1)
    top_reasons: int = Field(3, ge=0, le=10)


def load_settings(path: str | Path | None = None) -> LearnSettings:
    return load_yaml_model(path or DEFAULT_SETTINGS, LearnSettings, "learning settings")


@dataclass
class Model:
    method: str
    columns: list[str]
    estimator: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))


def labels_before(labels: pl.DataFrame, cutoff: datetime | None) -> pl.DataFrame:
    """account_id, label: each account's latest decision made before `cutoff` (reported =
    True, false positive = False; no further action and undecided accounts are unlabelled).
    Never a decision at or after the cutoff: the period being scored does not teach its own
    model. `labels` is store.feedback.account_labels' frame (or any with account_id, reported,
    decided_at)."""
    out = labels.filter(pl.col("reported").is_not_null())
    if cutoff is not None:
        decided = pl.col("decided_at")
        if getattr(out.schema["decided_at"], "time_zone", None) is None:
            decided = decided.dt.replace_time_zone("UTC")
        out = out.filter(decided < pl.lit(cutoff).dt.convert_time_zone("UTC"))
    return (
        out.sort(KEY, "decided_at")
        .group_by(KEY, maintain_order=True)
        .last()
        .select(KEY, pl.col("reported").alias("label"))
    )


def _xy(matrix: pl.DataFrame, columns: list[str]) -> np.ndarray:
    missing = [c for c in columns if c not in matrix.columns]
    frame = matrix.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)
    return frame.select(pl.col(columns).cast(pl.Float64)).to_numpy().astype(np.float64)


def enough(labels: pl.DataFrame, settings: LearnSettings) -> tuple[bool, str]:
    pos = int(labels["label"].sum())
    neg = labels.height - pos
    if pos < settings.min_positives or neg < settings.min_negatives:
        return False, (
            f"{pos} reported and {neg} false-positive accounts; training needs at least "
            f"{settings.min_positives} and {settings.min_negatives} (learning.yaml)"
        )
    return True, f"{pos} reported and {neg} false-positive accounts"


def train(
    matrix: pl.DataFrame, labels: pl.DataFrame, settings: LearnSettings, **meta: Any
) -> Model:
    """Fit on the accounts of `matrix` that `labels` (account_id, label) names."""
    rows = matrix.join(labels, on=KEY, how="inner").sort(KEY)
    ok, why = enough(rows.select(KEY, "label"), settings)
    if not ok:
        raise ConfigError(f"not enough labels to train: {why}")
    columns = [c for c in matrix.columns if c != KEY]
    x = _xy(rows, columns)
    y = rows["label"].cast(pl.Int64).to_numpy()
    pos = int(y.sum())
    params: dict[str, Any] = {
        "n_estimators": settings.n_estimators,
        "max_depth": settings.max_depth,
        "learning_rate": settings.learning_rate,
        "random_state": settings.seed,
        "n_jobs": 1,
        "scale_pos_weight": (len(y) - pos) / pos,
    }
    if settings.method == "xgbod":
        estimator = _fit_xgbod(x, y, params, settings.seed)
    else:
        from xgboost import XGBClassifier

        estimator = XGBClassifier(tree_method="hist", eval_metric="aucpr", **params)
        estimator.fit(x, y)
    info = {
        "method": settings.method,
        "positives": pos,
        "negatives": len(y) - pos,
        "n_columns": len(columns),
        "seed": settings.seed,
        **meta,
    }
    return Model(settings.method, columns, estimator, info)


def _fit_xgbod(x: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int) -> Any:
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.xgbod import XGBOD

    # XGBOD's default list holds 8 KNN and 8 LOF models (quadratic in the rows) and 11 OCSVMs:
    # the linear detectors flows87's own ensemble uses instead
    detectors = [IForest(random_state=seed), HBOS(), ECOD()]
    xgb_params = {k: v for k, v in params.items() if k != "n_jobs"}
    model = XGBOD(
        estimator_list=detectors,
        standardization_flag_list=[False, False, False],
        n_jobs=1,
        **xgb_params,
    )
    from xgboost import config_context

    # XGBOD still passes XGBoost's removed `silent` parameter (XGBoost logs that it ignores it:
    # verbosity 0), and calls PyOD's _set_n_classes with labels, which warns for a detector
    with config_context(verbosity=0), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y should not be presented", category=UserWarning)
        model.fit(np.nan_to_num(x), y)
    return model


def score(model: Model, matrix: pl.DataFrame) -> pl.DataFrame:
    """account_id, learned_score in [0, 1] (the model's probability that a decision would be
    'reported')."""
    x = _xy(matrix, model.columns)
    if x.shape[0] == 0:
        return pl.DataFrame(schema={KEY: pl.String, "learned_score": pl.Float64})
    if model.method == "xgbod":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            p = model.estimator.decision_function(np.nan_to_num(x))
    else:
        p = model.estimator.predict_proba(x)[:, 1]
    return pl.DataFrame({KEY: matrix[KEY], "learned_score": np.asarray(p, dtype=np.float64)})


def contributions(model: Model, matrix: pl.DataFrame, top: int) -> pl.DataFrame:
    """account_id, learned_reasons: the `top` features that raised the account's score most
    (XGBoost's exact tree SHAP values), in words. Empty for `xgbod`, whose trees see detector
    scores fitted on the labelled rows, not the account's own features."""
    schema = pl.Schema({KEY: pl.String(), "learned_reasons": pl.List(pl.String())})
    if model.method != "xgboost" or top == 0 or matrix.is_empty():
        return pl.DataFrame(schema=schema)
    from xgboost import DMatrix

    x = _xy(matrix, model.columns)
    contrib = model.estimator.get_booster().predict(DMatrix(x), pred_contribs=True)[:, :-1]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    reasons: list[list[str]] = []
    for i in range(x.shape[0]):
        said = [
            describe(model.columns[j], x[i, j], contrib[i, j])
            for j in order[i]
            if contrib[i, j] > 0
        ]
        reasons.append(said)
    return pl.DataFrame({KEY: matrix[KEY], "learned_reasons": reasons}, schema=schema)


def describe(column: str, value: float, weight: float) -> str:
    """One feature's part in words: `signal:ht_controller_hub` -> 'signal ht_controller_hub
    0.90 (+1.2)'; weights are log-odds."""
    shown = "missing" if np.isnan(value) else f"{value:,.4g}"
    kind, _, name = column.partition(":")
    if not name:
        feature, _, window = column.partition("@")
        text = f"{feature.replace('_', ' ')}{f' ({window})' if window else ''} {shown}"
    elif kind == "signal":
        text = f"signal {name} {shown}"
    elif kind == "anomaly":
        text = f"{name.replace('_', ' ')} {shown}"
    else:  # another source
        text = f"{kind} {name.replace('_', ' ')} {shown}"
    return f"{text} ({weight:+.2f})"


def save(model: Model, folder: Path) -> Path:
    """folder/model.<json|pkl> and folder/model.meta.json; the version is the file's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.method == "xgboost":
        path = folder / "model.json"
        model.estimator.get_booster().save_model(str(path))
    else:
        path = folder / "model.pkl"
        path.write_bytes(pickle.dumps(model.estimator))
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    model.meta = {**model.meta, "version": version, "file": path.name}
    meta = {"method": model.method, "columns": model.columns, **model.meta}
    (folder / "model.meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path


def load(folder: Path) -> Model:
    meta = json.loads((folder / "model.meta.json").read_text())
    path = folder / meta["file"]
    if meta["method"] == "xgboost":
        from xgboost import XGBClassifier

        estimator = XGBClassifier()
        estimator.load_model(str(path))
    else:
        estimator = pickle.loads(path.read_bytes())  # the run's own file, never an upload
    columns = meta.pop("columns")
    return Model(meta.pop("method"), columns, estimator, meta)
