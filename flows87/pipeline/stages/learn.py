"""Stage 6: the learned scorer. Retrain on investigators' decisions when enough are new, score
the run's accounts, blend the score into accounts_scored and cases (learn/blend.py).

What it keeps:
    RUN/learning/matrix.parquet   the accounts' learning rows (published with each interval:
                                  the features later decisions about these accounts train on)
    RUN/learning/model/           the model this run used (model.json, model.meta.json: its
                                  version, label counts, cutoff, whether this run retrained)
    published/models/<version>/   every model a scheduled run trained; published/models/
                                  current.json names the one in use

Honest by construction: a decision counts only if it was made before the run's interval began
(`flows87 run`: before the input's first transaction), and its account's learning row is the
one of the latest earlier interval that ended by then, never the period being scored.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline import learn
from flows87.pipeline.cases import load_settings as load_scoring
from flows87.pipeline.job import Job
from flows87.pipeline.learn import model as models
from flows87.pipeline.learn.blend import critical_accounts
from flows87.pipeline.learn.matrix import KEY, Layout, numeric, rows
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages.parts import appending
from flows87.rundir import RunDir

MATRIX = "learning/matrix.parquet"
BATCH_ACCOUNTS = 500_000
"""Above this many accounts the learning matrix is built, written and scored in batches of as
many (contiguous runs of the sorted account ids; the sources are sorted by account, so a batch
reads only its row groups): at 20M transactions (2M accounts, 185 columns) building it in one
piece from the whole features table peaked at 9.1 GB in 15 s, in 4 batches 2.2 GB in 16 s (the
5M run's 500k accounts, one piece: 1.9 GB, was 2.6). Below it, one piece kept in memory."""


def _cutoff(job: Job) -> datetime | None:
    """When the scored period begins: a scheduled run's data interval (not its look-back window,
    which reaches back over days already judged), else the configured window, else the input's
    first transaction."""
    if job.interval is not None:
        return job.interval.start
    if job.config.interval_start is not None:
        return job.config.interval_start
    ts = pl.scan_parquet(job.run.transactions).select(pl.col("ts").min()).collect().item()
    return ts if isinstance(ts, datetime) else None


def decisions(url: str | None = None) -> pl.DataFrame | None:
    """Every account's decisions in the case store (store.feedback.account_labels), or None
    when there is no store yet."""
    from flows87.investigate.store import account_labels
    from flows87.investigate.store.feedback import read_existing

    return read_existing(url, account_labels)


def _intervals(published: Path, cutoff: datetime | None, days: int = 0) -> list[tuple[Path, str]]:
    """The published intervals that ended by `cutoff` and, with `days`, within that many days
    before it (before the latest such end without a cutoff), with their end, in time order:
    what the learned scorer reads stays bounded however long the job has run."""
    out = []
    for folder in sorted((published / "intervals").glob("*")):
        path, info = folder / "learning_matrix.parquet", folder / "run.json"
        if not path.exists() or not info.exists():
            continue
        end = json.loads(info.read_text()).get("params", {}).get("interval_end")
        if end is None or (cutoff is not None and datetime.fromisoformat(end) > cutoff):
            continue
        out.append((folder, end))
    out.sort(key=lambda fe: datetime.fromisoformat(fe[1]))
    if days and out:
        last = cutoff if cutoff is not None else datetime.fromisoformat(out[-1][1])
        since = last - timedelta(days=days)
        out = [(f, e) for f, e in out if datetime.fromisoformat(e) > since]
    return out


def history(
    published: Path, cutoff: datetime | None, days: int = 0, accounts: pl.DataFrame | None = None
) -> pl.DataFrame | None:
    """Each account's learning row from the latest published interval that ended by `cutoff`
    (within `days`); only the rows of `accounts` when given (the decided and the presumed
    negatives: what training reads, not every account of every interval)."""
    scans = [
        pl.scan_parquet(folder / "learning_matrix.parquet").with_columns(pl.lit(end).alias("_end"))
        for folder, end in _intervals(published, cutoff, days)
    ]
    if not scans:
        return None
    if accounts is not None:
        wanted = accounts["account_id"].unique()
        scans = [scan.filter(pl.col("account_id").is_in(wanted)) for scan in scans]
    rows = pl.concat(scans, how="diagonal_relaxed").collect()
    return rows.sort("_end").unique("account_id", keep="last").drop("_end").sort("account_id")


def passed_over(published: Path, cutoff: datetime | None, days: int = 0) -> pl.DataFrame:
    """account_id of every account an interval ended by `cutoff` (within `days`) scored and no
    case of those intervals named: the population the queue passed over."""
    found = _intervals(published, cutoff, days)
    if not found:
        return pl.DataFrame(schema={"account_id": pl.String})
    seen = pl.concat(
        [pl.scan_parquet(f / "learning_matrix.parquet").select("account_id") for f, _ in found]
    )
    named = [
        pl.scan_parquet(f / "cases.parquet")
        .select(pl.col("accounts").explode().alias("account_id"))
        .drop_nulls()
        for f, _ in found
        if (f / "cases.parquet").exists()
    ]
    out = seen.unique()
    if named:
        out = out.join(pl.concat(named).unique(), on="account_id", how="anti")
    return out.sort("account_id").collect(engine="streaming")


def presumed_negatives(
    passed: pl.DataFrame | None, decided: pl.DataFrame, settings: models.LearnSettings
) -> pl.DataFrame:
    """`settings.presumed_negatives` accounts of `passed` that nobody decided, labelled False,
    drawn with the seed (the same draw for the same inputs)."""
    empty = pl.DataFrame(schema={"account_id": pl.String, "label": pl.Boolean})
    if passed is None or passed.is_empty() or settings.presumed_negatives == 0:
        return empty
    pool = passed.join(decided.select("account_id"), on="account_id", how="anti").sort("account_id")
    picked = pool.sample(min(settings.presumed_negatives, pool.height), seed=settings.seed)
    return picked.sort("account_id").with_columns(pl.lit(False).alias("label"))


def _current(published: Path) -> Path | None:
    pointer = published / "models" / "current.json"
    if not pointer.exists():
        return None
    folder = published / "models" / json.loads(pointer.read_text())["version"]
    return folder if (folder / "model.meta.json").exists() else None


def choose_model(
    labels: pl.DataFrame | None,
    rows: pl.DataFrame | None,
    previous: Path | None,
    settings: models.LearnSettings,
    cutoff: datetime | None,
    presumed: pl.DataFrame | None = None,
) -> tuple[models.Model | None, dict[str, Any]]:
    """Retrain when enough accounts gained a decision since the model in use was trained;
    otherwise keep that model; without one and without enough labels, none. Decisions alone
    decide whether to train; `presumed` (presumed_negatives' draw) adds negatives."""
    prev = models.load(previous) if previous is not None else None
    info: dict[str, Any] = {"previous": prev.version if prev else None}
    known = models.labels_before(labels, cutoff) if labels is not None else None
    usable = (
        known.join(rows.select("account_id"), on="account_id", how="semi")
        if (known is not None and rows is not None)
        else None
    )
    if usable is None or usable.is_empty():
        info["why"] = "no decided accounts with a learning row from an earlier interval"
        return prev, {**info, "retrained": False}
    ok, why = models.enough(usable, settings)
    seen = int(prev.meta.get("labelled", 0)) if prev else 0
    new = usable.height - seen
    info.update({"labelled": usable.height, "new_labels": new, "why": why})
    if not ok or (prev is not None and new < settings.retrain_min_new):
        if ok:
            info["why"] = f"{new} new labels since model {prev.version if prev else ''}: " + (
                f"retraining needs {settings.retrain_min_new}"
            )
        return prev, {**info, "retrained": False}
    assert rows is not None
    presumed = (
        pl.DataFrame(schema={"account_id": pl.String, "label": pl.Boolean})
        if presumed is None
        else presumed.join(rows.select("account_id"), on="account_id", how="semi")
    )
    info["presumed_negatives"] = presumed.height
    fitted = models.train(
        rows,
        pl.concat([usable, presumed]),
        settings,
        labelled=usable.height,
        presumed_negatives=presumed.height,
        cutoff=cutoff.isoformat() if cutoff else None,
        blend_weight=settings.blend_weight,
    )
    return fitted, {**info, "retrained": True}


Sources = tuple[pl.LazyFrame | None, pl.LazyFrame | None, pl.LazyFrame | None]


def _sources(run: RunDir) -> Sources:
    """features, signals and detector scores as scans of the columns the matrix reads."""
    features = None
    if run.features.exists():
        scan = pl.scan_parquet(run.features)
        schema = scan.collect_schema()
        window = ["window"] if "window" in schema else []
        features = scan.select(KEY, *window, *numeric(schema))
    signals = pl.scan_parquet(run.signals).select(KEY, "signal_id", "score")
    anomaly = None
    if run.anomaly_scores.exists():
        scan = pl.scan_parquet(run.anomaly_scores)
        anomaly = scan.select(KEY, *numeric(scan.collect_schema()))
    return features, signals, anomaly


def _batches(ids: pl.Series, size: int) -> list[pl.Series]:
    """The sorted account ids in contiguous runs of at most `size` (one when they fit)."""
    if ids.len() <= size:
        return [ids]
    n = -(-ids.len() // size)
    step = -(-ids.len() // n)
    return [ids.slice(start, step) for start in range(0, ids.len(), step)]


def _of(frame: pl.LazyFrame | None, ids: pl.Series) -> pl.LazyFrame | None:
    """The rows of the accounts from ids[0] to ids[-1]: a range, so the reader skips the row
    groups of a file sorted by account outside it."""
    if frame is None:
        return None
    return frame.filter(pl.col(KEY).is_between(pl.lit(ids[0]), pl.lit(ids[-1])))


def write_matrix(
    run: RunDir, size: int | None = None
) -> tuple[pl.DataFrame | None, int, list[str]]:
    """Write RUN/learning/matrix.parquet; return it when built in one piece (None when in
    batches of `size` accounts, default `BATCH_ACCOUNTS`), its row count and its columns."""
    size = BATCH_ACCOUNTS if size is None else size
    ids = pl.read_parquet(run.accounts_scored, columns=[KEY])[KEY].sort()
    sources = _sources(run)
    layout = Layout.of(*sources)
    batches = _batches(ids, size)
    if len(batches) == 1:
        matrix = rows(ids.to_frame().lazy(), layout, *sources)
        write_parquet(matrix, run.path / MATRIX)
        return matrix, matrix.height, matrix.columns
    empty = pl.DataFrame(schema={c: pl.String if c == KEY else pl.Float64 for c in layout.columns})
    with appending(run.path / MATRIX, empty) as out:
        for batch in batches:
            picked = (_of(s, batch) for s in sources)
            out.append(rows(batch.to_frame().lazy(), layout, *picked))
    return None, ids.len(), layout.columns


def _matrix_batches(
    run: RunDir, matrix: pl.DataFrame | None, columns: list[str], size: int
) -> Iterator[pl.DataFrame]:
    """The matrix (only `columns` of it) in batches of `size` rows: the one in memory, or read
    back from its file."""
    if matrix is not None:
        yield matrix.select(columns)
        return
    scan = pl.scan_parquet(run.path / MATRIX).select(columns)
    total = scan.select(pl.len()).collect().item()
    for start in range(0, total, size):
        yield scan.slice(start, size).collect()


def _scores(
    fitted: models.Model, frames: Iterable[pl.DataFrame], named: pl.DataFrame, top: int
) -> pl.DataFrame:
    """account_id, learned_score, learned_reasons (only for the `named` accounts: what the case
    page shows, bounded by the queue, not by the population), a batch of the matrix at a time."""
    out = [
        models.score(fitted, frame).join(
            models.contributions(fitted, frame.join(named, on=KEY, how="semi"), top),
            on=KEY,
            how="left",
        )
        for frame in frames
    ]
    return pl.concat(out)


def learn_step(job: Job) -> dict[str, Any]:
    """Build the run's learning rows; retrain or reuse the model; blend its score in."""
    from flows87.pipeline import schedule

    config, run = job.config, job.run
    with stage(run, "learn") as rec:
        settings = learn.load_settings(config.settings_path("learning"))
        rec.params = settings.model_dump()
        matrix, height, columns = write_matrix(run)
        rec.counts = {"accounts": height, "columns": len(columns) - 1}
        if not settings.enabled:
            rec.counts["model"] = "off"
            return rec.counts
        published = schedule.published_dir()
        cutoff = _cutoff(job)
        with rec.step("train"):
            labels, days = decisions(), settings.history_days
            known = (
                models.labels_before(labels, cutoff)
                if labels is not None
                else pl.DataFrame(schema={"account_id": pl.String, "label": pl.Boolean})
            )
            presumed = presumed_negatives(passed_over(published, cutoff, days), known, settings)
            wanted = pl.concat([known.select("account_id"), presumed.select("account_id")])
            fitted, info = choose_model(
                labels,
                history(published, cutoff, days, wanted),
                _current(published),
                settings,
                cutoff,
                presumed,
            )
        rec.counts.update({k: v for k, v in info.items() if k != "why"})
        if fitted is None:
            rec.warnings = [f"no learned scorer: {info['why']}"]
            rec.counts["model"] = "none"
            return rec.counts
        folder = run.path / "learning" / "model"
        if folder.exists():
            shutil.rmtree(folder)
        models.save(fitted, folder)
        rec.counts["model"] = fitted.version
        if info["retrained"] and job.interval is not None:
            keep = published / "models" / fitted.version
            if not keep.exists():
                shutil.copytree(folder, keep)
            (published / "models" / "current.json").write_text(
                json.dumps({"version": fitted.version}) + "\n"
            )
        with rec.step("blend"):
            cases = pl.read_parquet(run.cases)
            named = cases.select(pl.col("accounts").explode().alias(KEY)).unique()
            # xgbod's ECOD scores a row against the others scored with it: one piece
            size = BATCH_ACCOUNTS if fitted.method == "xgboost" else max(height, 1)
            used = [KEY, *(c for c in fitted.columns if c in columns)]
            scores = _scores(
                fitted,
                _matrix_batches(run, matrix, used, size),
                named,
                settings.top_reasons,
            )
            del matrix
            signals = pl.read_parquet(run.signals, columns=["source", KEY, "score"])
            strong = load_scoring(config.settings_path("scoring")).strong_signal
            critical = critical_accounts(signals, strong)
            scored = pl.read_parquet(run.accounts_scored)
            accounts = learn.blend_accounts(scored, scores, critical, settings.blend_weight)
            cases = learn.blend_cases(cases, accounts, critical, settings.blend_weight)
            write_parquet(accounts, run.accounts_scored)
            write_parquet(cases, run.cases)
        rec.counts["critical_accounts"] = critical.height
    return rec.counts
