"""The PyOD ensemble on synthetic feature tables with planted outliers (real PyOD, no mocks)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from flows87.errors import ConfigError
from flows87.pipeline.detectors import DetectorSettings, ModelSpec, load_settings, score
from flows87.pipeline.features import NUMERIC

N, OUTLIERS = 3000, 30


def feature_table(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Correlated, heavy-tailed features like real accounts; outliers receive from many payers at night."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(2.0, 0.6, N)
    data = {c: np.zeros(N) for c in NUMERIC}
    data["in_count"] = rng.poisson(activity)
    data["out_count"] = rng.poisson(activity)
    data["in_sum"] = data["in_count"] * rng.lognormal(4, 0.5, N)
    data["out_sum"] = data["in_sum"] * rng.uniform(0.6, 1.0, N)
    data["distinct_payers"] = np.minimum(data["in_count"], rng.poisson(2, N) + 1)
    data["night_in_share"] = rng.beta(1, 12, N)
    truth = np.zeros(N, dtype=bool)
    truth[:OUTLIERS] = True
    data["distinct_payers"][:OUTLIERS] = rng.integers(40, 80, OUTLIERS)
    data["in_count"][:OUTLIERS] = data["distinct_payers"][:OUTLIERS] + 5
    data["night_in_share"][:OUTLIERS] = rng.uniform(0.7, 1.0, OUTLIERS)
    frame = pl.DataFrame(
        {
            "account_id": [f"a{i:05d}" for i in range(N)],
            "window": ["7d"] * N,
            **{k: v.astype(float) for k, v in data.items()},
        }
    )
    return frame, truth


def settings(**kw: object) -> DetectorSettings:
    base = load_settings().model_dump()
    base.update(kw)
    return DetectorSettings(**base)


def test_ensemble_ranks_planted_outliers_high() -> None:
    frame, truth = feature_table()
    result = score(frame, settings())
    # Accounts below min_transactions are not scored: they count as the least unusual.
    scores = (
        frame.select("account_id")
        .join(result.scores, on="account_id", how="left")["anomaly_score"]
        .fill_null(0.0)
        .to_numpy()
    )
    assert roc_auc_score(truth, scores) > 0.95
    top5 = set(result.scores.sort("anomaly_score", descending=True).head(N // 20)["account_id"])
    planted = {f"a{i:05d}" for i in range(OUTLIERS)}
    assert len(top5 & planted) >= 0.8 * OUTLIERS
    assert result.signals.height == round(0.01 * result.scores.height)


def test_scores_are_ranks_and_deterministic() -> None:
    frame, _ = feature_table()
    a = score(frame, settings()).scores
    b = score(frame, settings()).scores
    assert a.equals(b)
    assert a["anomaly_score"].min() > 0 and a["anomaly_score"].max() <= 1
    assert {"rank_iforest", "rank_ecod", "rank_copod", "rank_hbos"} <= set(a.columns)


def test_explanations_name_the_unusual_features_in_words() -> None:
    frame, _ = feature_table()
    sig = score(frame, settings(contamination=0.005)).signals
    planted = sig.filter(pl.col("account_id") < f"a{OUTLIERS:05d}")
    assert planted.height > 0
    ev = json.loads(planted["evidence"][0])
    names = {r["feature"] for r in ev["reasons"]}
    assert names & {"distinct_payers", "night_in_share", "in_count"}
    assert "typical account" in planted["summary"][0]
    assert sig["source"].unique().to_list() == ["detector"]
    assert sig["family"].unique().to_list() == ["anomaly"]


def test_constant_and_empty_columns_are_ignored_and_small_input_is_safe() -> None:
    frame, _ = feature_table()
    result = score(frame, settings())
    assert "hotel_count" not in result.features_used  # all zeros: no information
    tiny = score(frame.head(5), settings())
    assert tiny.signals.is_empty() and tiny.scores.is_empty()


def test_settings_refuse_unknown_model_and_feature(tmp_path) -> None:
    p = tmp_path / "detectors.yaml"
    p.write_text("models: [{name: NotAModel}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown model"):
        load_settings(p)
    p.write_text("models: [{name: ECOD}]\nexclude: [nope]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown feature"):
        load_settings(p)
    p.write_text("models: [{name: HBOS}]\n", encoding="utf-8")  # a known model alone loads
    assert [m.name for m in load_settings(p).models] == ["HBOS"]


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_ecod_copod_hbos_give_pyods_training_scores_exactly(seed: int) -> None:
    """flows87.pipeline.detectors.fast replaces PyOD's ECOD, COPOD and HBOS (4x faster); the scores must
    be PyOD's decision_scores_ bit for bit, ties and skewed columns included."""
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS

    from flows87.pipeline.detectors import fast

    rng = np.random.default_rng(seed)
    n = 2500
    x = np.column_stack(
        [
            rng.integers(0, 4, n).astype(float),  # many ties
            rng.normal(size=n),
            rng.exponential(size=n),  # right skew
            -rng.exponential(size=n),  # left skew
            np.round(rng.lognormal(size=n), 1),
            np.where(rng.random(n) < 0.9, 0.0, rng.normal(size=n)),  # mostly zero
        ]
    )
    # 6, 66 and 138 features: numpy sums fewer than 8, up to 128, and more terms differently
    for width in (1, 11, 23):
        wide = np.column_stack([x * rng.choice([1.0, 3.5, -2.0], size=6) for _ in range(width)])
        tails = fast.tails(wide)
        assert np.array_equal(fast.ecod_scores(tails), ECOD().fit(wide).decision_scores_)
        assert np.array_equal(fast.copod_scores(tails), COPOD().fit(wide).decision_scores_)
    for bins in (10, 20):
        assert np.array_equal(fast.hbos_scores(x, bins), HBOS(n_bins=bins).fit(x).decision_scores_)
    settings = DetectorSettings(models=[ModelSpec(name="HBOS", params={"n_bins": "auto"})])
    frame, _ = feature_table(seed)
    assert score(frame, settings).scores.height > N // 2  # "auto" bins: PyOD computes them


def test_tails_against_the_fitted_population_are_the_populations_own() -> None:
    """Partitions and batches score against the population's distinct values and counts: each
    population row gets the tails of the whole population, ties and signed zeros included."""
    from flows87.pipeline.detectors import fast

    rng = np.random.default_rng(7)
    n = 3000
    x = np.asfortranarray(
        np.column_stack(
            [
                rng.integers(0, 3, n).astype(float),
                np.where(rng.random(n) < 0.5, -0.0, 0.0),
                rng.normal(size=n),
                np.round(rng.exponential(size=n), 1),
            ]
        )
    )
    whole, fitted = fast.tails(x), fast.fit_tails(x)
    assert sum(v.size for v in fitted.values) < x.size // 2  # ties stored once
    rows = np.sort(rng.choice(n, 700, replace=False))
    some = fast.tails_of(fitted, x[rows])
    assert np.array_equal(some.left, whole.left[:, rows])
    assert np.array_equal(some.right, whole.right[:, rows])


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 300), st.integers(1, 5)),
        elements=st.floats(-1e6, 1e6, allow_subnormal=False),
    )
)
def test_row_sums_over_feature_rows_are_numpys_row_sums_to_the_bit(x: np.ndarray) -> None:
    from flows87.pipeline.detectors.fast import row_sums

    by_account = np.ascontiguousarray(x.T)
    assert np.array_equal(row_sums(x), by_account.sum(axis=1))


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_scoring_in_partitions_equals_scoring_all_at_once(parts: int) -> None:
    """The partitioned DAG fits once, scores each partition, ranks together: the same bits."""
    import pickle

    from polars.testing import assert_frame_equal

    from flows87.pipeline.detectors import combine, fit, raw_scores

    frame, _ = feature_table(3)
    s = settings()
    whole = score(frame, s)
    fitted = pickle.loads(pickle.dumps(fit(frame, s)))  # as handed between tasks
    ids = frame["account_id"]
    pieces = [
        raw_scores(
            fitted, frame.filter(pl.col("account_id").is_in(ids.gather_every(parts, p).implode()))
        )
        for p in range(parts)
    ]
    merged = combine(pl.concat(pieces[::-1]), frame, fitted)  # order of arrival must not matter
    assert_frame_equal(whole.scores, merged.scores, check_exact=True)
    assert_frame_equal(whole.signals, merged.signals, check_exact=True)


def test_accounts_outside_the_population_score_without_error() -> None:
    from flows87.pipeline.detectors import fit, raw_scores

    frame, _ = feature_table(4)
    fitted = fit(frame, settings())
    extreme = frame.head(3).with_columns(
        pl.Series("account_id", ["new1", "new2", "new3"]),
        (pl.col("in_sum") * 1000).alias("in_sum"),
    )
    raw = raw_scores(fitted, extreme)
    assert raw.height == 3
    assert all(raw[c].is_finite().all() for c in raw.columns if c.startswith("raw_"))
    # far beyond every account seen on one feature: more unusual than the typical account
    population = raw_scores(fitted, frame)
    assert raw["raw_ecod"].min() >= population["raw_ecod"].quantile(0.5)


def test_anomaly_risk_is_a_tail_of_the_population_ranking() -> None:
    from flows87.pipeline.detectors import RankingSettings, anomaly_risk

    # 100 accounts scored 0.00 .. 0.99: the top one has u = 1/100, the tenth u = 10/100
    combined = np.arange(100) / 100.0
    risk = anomaly_risk(combined, RankingSettings(weight=0.5, tail=0.1))
    assert risk[99] == pytest.approx(0.5 * (1 - 0.01 / 0.1))
    assert risk[95] == pytest.approx(0.5 * (1 - 0.05 / 0.1))
    assert (risk[:91] == 0).all() and (np.diff(risk) >= 0).all()
    # ties share one value: that of the whole tied group
    tied = anomaly_risk(np.array([0.9, 0.9, 0.1, 0.2]), RankingSettings(weight=0.8, tail=1.0))
    assert tied[0] == tied[1] == pytest.approx(0.8 * 0.5) and tied[3] == pytest.approx(0.8 * 0.25)
    assert not anomaly_risk(combined, RankingSettings(weight=0.0)).any()


def test_ensemble_scores_carry_the_ranking_weight() -> None:
    frame, _ = feature_table()
    s = settings(ranking={"weight": 0.4, "tail": 0.05})
    scores = score(frame, s).scores.sort("anomaly_score", descending=True)
    assert scores["anomaly_risk"][0] == pytest.approx(0.4 * (1 - 1 / scores.height / 0.05))
    assert (scores["anomaly_risk"] > 0).sum() == pytest.approx(0.05 * scores.height, abs=1)
    assert load_settings().ranking.weight > 0  # the shipped ensemble counts in the ranking


def test_ranks_are_distinct_ties_in_account_order_and_a_nan_score_ranks_most_unusual() -> None:
    from flows87.pipeline.detectors.ensemble import _rank01

    ranks = _rank01(np.array([0.3, np.nan, 0.1, 0.3, 0.2]))
    assert sorted(ranks) == [0.2, 0.4, 0.6, 0.8, 1.0]  # every rank distinct, in (0, 1]
    assert ranks[1] == 1.0  # the NaN: most unusual, not a NaN column
    assert ranks[0] < ranks[3]  # tied scores in account order


def test_a_nan_feature_counts_as_missing_and_scoring_still_works() -> None:
    """A ratio 0/0 from a reader we have not seen arrives as NaN (not null): HBOS's histogram
    failed on it (AMLGentex). It now counts as missing, and a NaN-free table scores as before."""
    frame, truth = feature_table()
    nan_rows = pl.int_range(pl.len()) % 7 == 0
    broken = frame.with_columns(
        pl.when(nan_rows)
        .then(float("nan"))
        .otherwise(pl.col("night_in_share"))
        .alias("night_in_share")
    )
    result = score(broken, settings())
    assert result.scores.height == score(frame, settings()).scores.height
    assert result.scores["anomaly_score"].is_nan().sum() == 0
    scores = (
        frame.select("account_id")
        .join(result.scores, on="account_id", how="left")["anomaly_score"]
        .fill_null(0.0)
        .to_numpy()
    )
    assert roc_auc_score(truth, scores) > 0.9
