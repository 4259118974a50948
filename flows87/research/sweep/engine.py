"""Re-evaluate one run under other rule and detector parameters, reusing what the run computed.

Loaded once per sweep: the run's features, transactions, accounts, signals and anomaly scores.
Per setting, only the rules whose parameters differ from the run's are evaluated again
(`flows87.pipeline.rules.run_rules` with overrides; graph patterns that read the rules' signals are
evaluated again when an account or transaction rule changed), detector signals are re-drawn
from the stored anomaly scores when the contamination changes, and the signals are scored and
grouped into cases again (`flows87.pipeline.cases`) to measure recall and alert volume against the
labels of accounts_scored.parquet.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.pipeline import cases as casework
from flows87.pipeline import detectors
from flows87.pipeline.rules import (
    SIGNAL_SCHEMA,
    LoadedRule,
    empty_signals,
    graph_signals,
    load_rules,
    run_rules,
)
from flows87.pipeline.rules.ceiling import Ceiling, hold_back
from flows87.pipeline.stages.cases import TRANSACTION_COLUMNS, scored_accounts
from flows87.pipeline.stages.common import (
    GRAPH_FEATURE_COLUMNS,
    NOT_FOR_DETECTION,
    feature_settings,
)
from flows87.pipeline.stages.config import RunConfig
from flows87.research.evaluate.metrics import account_metrics
from flows87.research.sweep.space import SweepParam, parameter_space
from flows87.rundir import RunDir

SIGNAL_COLUMNS = list(SIGNAL_SCHEMA.names())


def _reads_signals(pattern: str) -> bool:
    """Whether a graph pattern reads the rules' signals (then it changes when they do)."""
    from flows87.pipeline.graph.patterns import PATTERNS

    try:
        return "ctx.signals" in inspect.getsource(PATTERNS[pattern].fn)
    except (OSError, TypeError, KeyError):
        return True  # cannot tell: evaluate it again to be safe


def run_config(run_dir: str | Path) -> RunConfig:
    """The configuration the run was made with (run.json), or the defaults."""
    path = RunDir(run_dir).run_json
    if not path.exists():
        return RunConfig()
    params = json.loads(path.read_text(encoding="utf-8")).get("params") or {}
    known = {k: v for k, v in params.items() if k in RunConfig.model_fields}
    try:
        return RunConfig(**known)
    except ValueError:
        return RunConfig()


def full_run_seconds(run_dir: str | Path) -> float | None:
    path = RunDir(run_dir).run_json
    if not path.exists():
        return None
    secs = json.loads(path.read_text(encoding="utf-8")).get("stage_seconds") or {}
    return round(float(sum(secs.values())), 3) if secs else None


def _rule_key(rule: Any, values: dict[str, float]) -> str:
    """A rule's logic without its defaults, with the values it runs with."""
    body = rule.model_dump(
        mode="json",
        exclude={
            "params",
            "modified",
            "date",
            "title",
            "description",
            "references",
            "falsepositives",
            "author",
            "tags",
            "summary",
        },
    )
    return json.dumps({"rule": body, "values": values}, sort_keys=True, default=str)


@dataclass
class Outcome:
    setting: dict[str, float | int]
    metrics: dict[str, Any]
    seconds: float
    rules_evaluated: list[str] = field(default_factory=list)


class SweepContext:
    """One run directory, loaded once, re-scored under many settings."""

    def __init__(
        self,
        run_dir: str | Path,
        rules_dir: str | Path | None = None,
        *,
        population: str = "all",
    ) -> None:
        t0 = time.perf_counter()
        self.run_dir = Path(run_dir)
        run = RunDir(run_dir)
        for path in (
            run.features,
            run.transactions,
            run.accounts,
            run.signals,
            run.accounts_scored,
        ):
            if not path.exists():
                raise InputError(f"{path.name} not found: a sweep needs a finished run", file=path)
        self.run_config = run_config(self.run_dir)
        self.rules_dir = Path(rules_dir) if rules_dir else Path(self.run_config.rules_dir)
        update: dict[str, Any] = {"rules_dir": self.rules_dir, "rule_overrides": {}}
        if rules_dir is not None:  # its settings files, where it has them; else the run's
            for name, field_ in (
                ("features", "feature_settings"),
                ("detectors", "detector_settings"),
                ("scoring", "scoring_settings"),
            ):
                own = self.rules_dir / "settings" / f"{name}.yaml"
                update[field_] = own if own.exists() else self.run_config.settings_path(name)
        self.config = self.run_config.model_copy(update=update)
        self.loaded: list[LoadedRule] = [
            r for r in load_rules(self.rules_dir) if r.rule.status != "deprecated"
        ]
        self.rules = {r.rule.id: r.rule for r in self.loaded}
        self.scoring = casework.load_settings(self.config.settings_path("scoring"))
        det_path = self.config.settings_path("detectors")
        self.detector_settings = detectors.load_settings(det_path)
        self.space: dict[str, SweepParam] = parameter_space(
            self.loaded,
            {"detectors": det_path, "scoring": self.config.settings_path("scoring")},
            {
                "detectors": self.detector_settings.model_dump(),
                "scoring": self.scoring.model_dump(),
            },
        )
        scored = pl.read_parquet(run.accounts_scored)
        if "is_suspicious" not in scored.columns:
            raise InputError(
                "the run has no labels (is_suspicious): a sweep measures recall against them",
                file=run.accounts_scored,
            )
        labels = [c for c in ("account_id", "is_suspicious", "typology") if c in scored.columns]
        self.accounts = scored.select(labels)
        tx_names = pl.scan_parquet(run.transactions).collect_schema().names()
        self.transactions = pl.read_parquet(
            run.transactions,
            columns=[c for c in tx_names if c not in NOT_FOR_DETECTION],
        )
        self.case_tx = self.transactions.select(TRANSACTION_COLUMNS)
        if population == "active":
            active = pl.concat(
                [
                    self.case_tx.select(pl.col("src_account").alias("account_id")),
                    self.case_tx.select(pl.col("dst_account").alias("account_id")),
                ]
            ).unique()
            self.accounts = self.accounts.join(active, on="account_id", how="semi")
        elif population != "all":
            raise ConfigError(f"unknown population {population!r}", hint="all or active")
        self.population = population
        self.account_table = pl.read_parquet(run.accounts)
        self.features = pl.read_parquet(run.features)
        # rules evaluated again are held to the run's flood ceiling, as the run held them
        self.ceiling = Ceiling(
            self.features["account_id"].n_unique(),
            self.scoring.ceiling,
            self.scoring.max_case_accounts,
        )
        self.feature_settings = feature_settings(self.config)
        self.origin = self._origin()
        signals = pl.read_parquet(run.signals).select(SIGNAL_COLUMNS)
        self.stored = {k[0]: v for k, v in signals.partition_by("signal_id", as_dict=True).items()}
        anomaly = run.anomaly_scores
        self.anomaly = pl.read_parquet(anomaly) if anomaly.exists() else None
        self._cache: dict[str, pl.DataFrame] = {}
        self._graph_ctx = None
        self._run_keys = self._stored_keys()
        self.run_contamination = self._run_contamination()
        self.dependent_graph = {
            rid
            for rid, r in self.rules.items()
            if r.scope == "graph" and r.pattern and _reads_signals(r.pattern)
        }
        self.setup_seconds = round(time.perf_counter() - t0, 3)

    # -- what the run computed -------------------------------------------------------------

    def _origin(self) -> datetime:
        """Where the windows align, as the run's (stages.common.origin): the data interval's
        start, or midnight of the first transaction; without transactions, the epoch."""
        if self.config.interval_start is not None:
            return self.config.interval_start
        first = self.transactions["ts"].min()
        if first is None:
            return datetime(1970, 1, 1, tzinfo=UTC)
        if not isinstance(first, datetime):
            raise InputError(
                f"transactions.ts is {self.transactions['ts'].dtype}, not a timestamp",
                file=RunDir(self.run_dir).transactions,
            )
        return first.replace(hour=0, minute=0, second=0, microsecond=0)

    def _stored_keys(self) -> dict[str, str]:
        """For each rule of the run, the key its stored signals were computed under."""
        try:
            run_rules_ = {r.rule.id: r.rule for r in load_rules(self.run_config.rules_dir)}
        except ConfigError:
            run_rules_ = dict(self.rules)  # the run's catalogue moved: assume the same rules
        keys = {}
        for rid, rule in run_rules_.items():
            if rule.status == "deprecated":
                continue
            try:
                values = rule.values(self.run_config.rule_overrides.get(rid))
            except ValueError:
                continue
            keys[rid] = _rule_key(rule, values)
        return keys

    def _run_contamination(self) -> float | None:
        try:
            return detectors.load_settings(self.run_config.settings_path("detectors")).contamination
        except ConfigError:
            return None

    # -- one setting -----------------------------------------------------------------------

    def split(self, setting: dict[str, float | int]) -> tuple[dict[str, dict], dict, dict]:
        """(rule overrides, detector changes, scoring changes) of a setting."""
        rules: dict[str, dict[str, float]] = {}
        det: dict[str, float] = {}
        scoring: dict[str, float] = {}
        for key, value in setting.items():
            owner, _, name = key.partition(".")
            if owner == "detectors":
                det[name] = value
            elif owner == "scoring":
                scoring[name] = value
            elif owner in self.rules:
                rules.setdefault(owner, {})[name] = value
            else:
                raise ConfigError(f"no rule {owner!r} in {self.rules_dir}")
        return rules, det, scoring

    def _graph_context(self):
        if self._graph_ctx is None:
            from flows87.pipeline.graph.patterns import GraphContext

            cols = [c for c in GRAPH_FEATURE_COLUMNS if c in self.features.columns]
            self._graph_ctx = GraphContext(
                self.transactions, self.account_table, self.features.select(cols), empty_signals()
            )
        return self._graph_ctx

    def _evaluate_rule(self, rid: str, values: dict, prior: pl.DataFrame | None) -> pl.DataFrame:
        rule = self.rules[rid]
        if rule.scope != "graph":
            res = run_rules(
                [rule],
                self.features,
                self.transactions,
                self.account_table,
                self.feature_settings,
                self.origin,
                {rid: values},
                ceiling=self.ceiling,
            )
            return res.signals.select(SIGNAL_COLUMNS)
        from flows87.pipeline.graph.patterns import PATTERNS

        if rule.pattern is None:  # the rule model requires one of a graph rule
            raise ConfigError(f"graph rule {rid} has no pattern")
        pattern = PATTERNS[rule.pattern]
        ctx = self._graph_context()
        ctx.signals = prior if prior is not None else empty_signals()
        hits = pattern.fn(ctx, {**pattern.params, **rule.values(values)})
        kept, _, _ = hold_back(rule, graph_signals(rule, hits), self.ceiling)
        return kept.select(SIGNAL_COLUMNS)

    def signals(self, setting: dict[str, float | int]) -> tuple[pl.DataFrame, list[str]]:
        """Every signal under `setting`, and the rules evaluated again for it."""
        overrides, det, _ = self.split(setting)
        parts: dict[str, pl.DataFrame] = {}
        evaluated: list[str] = []
        nongraph_changed = False
        order = sorted(self.rules, key=lambda r: (self.rules[r].scope == "graph", r))
        for rid in order:
            rule = self.rules[rid]
            values = rule.values(overrides.get(rid))
            key = _rule_key(rule, values)
            dependent = rule.scope == "graph" and rid in self.dependent_graph and nongraph_changed
            if key == self._run_keys.get(rid) and not dependent:
                parts[rid] = self.stored.get(rid, empty_signals().select(SIGNAL_COLUMNS))
                continue
            if rule.scope != "graph":
                nongraph_changed = True
            prior = None
            if rule.scope == "graph":
                prior = self._prior(parts)
                key += "|prior:" + self._prior_key(overrides)
            if key not in self._cache:
                self._cache[key] = self._evaluate_rule(rid, values, prior)
            parts[rid] = self._cache[key]
            evaluated.append(rid)
        parts["pyod_ensemble"] = self._detector_signals(det.get("contamination"))
        frames = [p for p in parts.values() if p.height]
        merged = pl.concat(frames) if frames else empty_signals().select(SIGNAL_COLUMNS)
        merged = merged.sort(
            "source", "signal_id", "account_id", "window_start", "evidence", maintain_order=True
        )
        return merged, evaluated

    def _prior(self, parts: dict[str, pl.DataFrame]) -> pl.DataFrame:
        frames = [v for rid, v in parts.items() if self.rules[rid].scope != "graph" and v.height]
        return pl.concat(frames) if frames else empty_signals()

    def _prior_key(self, overrides: dict[str, dict]) -> str:
        ng = {r: v for r, v in overrides.items() if self.rules[r].scope != "graph"}
        return json.dumps(ng, sort_keys=True)

    def _detector_signals(self, contamination: float | None) -> pl.DataFrame:
        stored = self.stored.get("pyod_ensemble", empty_signals().select(SIGNAL_COLUMNS))
        if contamination is None:
            contamination = self.detector_settings.contamination
        if contamination == self.run_contamination or self.anomaly is None:
            return stored
        key = f"pyod_ensemble|{contamination}"
        if key not in self._cache:
            scores = self.anomaly.sort("account_id")
            combined = scores["anomaly_score"].to_numpy()
            k = max(1, int(round(len(combined) * contamination)))
            flagged = np.sort(np.argsort(-combined, kind="stable")[:k])
            top = scores[flagged]
            self._cache[key] = top.select(
                pl.lit("detector").alias("source"),
                pl.lit("pyod_ensemble").alias("signal_id"),
                "account_id",
                pl.lit([], dtype=pl.List(pl.String)).alias("txn_ids"),
                pl.col("anomaly_score").alias("score"),
                pl.lit("anomaly").alias("family"),
                pl.lit([], dtype=pl.List(pl.String)).alias("typologies"),
                pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("window_start"),
                pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("window_end"),
                pl.lit("{}").alias("evidence"),
                pl.lit("unusual among all accounts (sweep)").alias("summary"),
            )
        return self._cache[key]

    def evaluate(self, setting: dict[str, float | int]) -> Outcome:
        t0 = time.perf_counter()
        scored, n_signals, n_cases, evaluated = self._score(setting)
        metrics = self.measure(scored)
        metrics["signals"] = n_signals
        metrics["cases"] = n_cases
        return Outcome(dict(setting), metrics, round(time.perf_counter() - t0, 3), evaluated)

    def scored(self, setting: dict[str, float | int]) -> pl.DataFrame:
        """accounts_scored under `setting`, for the sweep's population of accounts."""
        return self._score(setting)[0]

    def _score(self, setting: dict[str, float | int]) -> tuple[pl.DataFrame, int, int, list[str]]:
        signals, evaluated = self.signals(setting)
        _, _, scoring_changes = self.split(setting)
        settings = (
            self.scoring.model_copy(update=scoring_changes) if scoring_changes else self.scoring
        )
        links = casework.links(signals, self.case_tx)
        parties = casework.spread_parties(self.account_table, settings.party_min_banks)
        risk = casework.account_risk(signals, links, settings, parties)
        links = casework.with_parties(links, parties)
        built = casework.build(risk, signals, links, self.case_tx, settings)
        scored = scored_accounts(
            self.accounts.select(
                "account_id",
                "is_suspicious",
                *(["typology"] if "typology" in self.accounts.columns else []),
            ),
            self.case_tx,
            risk,
            built.membership,
            self.anomaly,
            settings.uncorroborated_factor,
            built.linked,
            settings.neighbour_anomaly_share,
            settings.infrastructure_share,
        )
        scored = scored.join(self.accounts.select("account_id"), on="account_id", how="semi")
        return scored, signals.height, built.cases.height, evaluated

    @staticmethod
    def measure(scored: pl.DataFrame) -> dict[str, Any]:
        """Recall (accounts in cases, overall and per typology) and alert volume (accounts in
        cases / accounts), with recall at fixed budgets of the risk ranking."""
        m = account_metrics(scored)
        return {
            "recall": m.get("recall") or 0.0,
            "alert_rate": m.get("alert_rate") or 0.0,
            "precision": m.get("precision"),
            "alerted_accounts": m.get("alerted_accounts"),
            "accounts": m.get("accounts"),
            "suspicious_accounts": m.get("suspicious_accounts"),
            "recall_at_budget": m.get("recall_at_budget"),
            "typologies": {k: v["recall"] for k, v in m.get("typologies", {}).items()},
        }
