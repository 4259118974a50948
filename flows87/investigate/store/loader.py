"""Load a run directory into the case store, idempotently.

A case (same case_id) seen again gets its evidence, risk, accounts and transactions replaced by
the run's and keeps everything people added (status, assignee, notes, approvals, dispositions,
audit entries). Loading the same run twice changes nothing: each case carries a fingerprint of
its evidence, and only new or changed cases are written, with bulk statements (not one ORM
object per row).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from flows87.errors import InputError
from flows87.investigate.store import audit
from flows87.investigate.store.models import (
    Case,
    CaseAccount,
    CaseInterval,
    CaseSignal,
    CaseTransaction,
    CaseTypology,
    Run,
    utcnow,
)

CHUNK = 500  # ids per IN (...) list
INSERT_BATCH = 10_000  # rows per executemany

CASE_COLUMNS = (
    "risk_score",
    "anchor_account",
    "central_account",
    "n_accounts",
    "n_signals",
    "typologies",
    "families",
    "signal_ids",
    "first_ts",
    "last_ts",
    "total_amount",
    "summary",
)
TXN_COLUMNS = (
    "ts",
    "src_account",
    "dst_account",
    "amount",
    "currency",
    "amount_base",
    "channel",
    "mcc",
    "src_country",
    "dst_country",
    "location_id",
    "device_id",
    "memo",
)
ACCOUNT_SCORE_COLUMNS = ("risk_score", "signal_risk", "anomaly_score", "n_signals", "families")
ACCOUNT_COLUMNS = ("name", "kind", "bank_id", "party_id", "country", "opened_at")
ACCOUNT_DETAILS = (
    "birth_date",
    "address",
    "phone",
    "email",
    "device_id",
    "occupation",
    "business_type",
)


@dataclass
class LoadResult:
    interval_key: str
    cases: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    signals: int = 0
    accounts: int = 0
    transactions: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    new_case_ids: list[str] = field(default_factory=list)
    updated_case_ids: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("new_case_ids")
        out.pop("updated_case_ids")
        return out


def _read(path: Path, required: bool) -> pl.DataFrame | None:
    if not path.exists():
        if required:
            raise InputError("missing from the run directory", file=path)
        return None
    try:
        return pl.read_parquet(path)
    except Exception as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=path) from None


def _need(frame: pl.DataFrame, columns: Iterable[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=path)


def _json_list(col: str) -> pl.Expr:
    """A list[str] column as JSON text, in polars (no per-row Python)."""
    return (
        pl.struct(pl.col(col).fill_null([]).alias("v"))
        .struct.json_encode()
        .str.slice(5)
        .str.strip_suffix("}")
        .alias(col)
    )


def _with_optional(frame: pl.DataFrame, columns: Iterable[str], dtype: pl.DataType) -> pl.DataFrame:
    add = [pl.lit(None, dtype=dtype).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(add) if add else frame


def _digests(frame: pl.DataFrame, order: list[str]) -> dict[str, str]:
    """case_id -> sha256 of the case's rows (canonical JSON lines in a fixed order)."""
    if frame.is_empty():
        return {}
    lines = (
        frame.sort(["case_id", *order])
        .select("case_id", pl.struct(pl.exclude("case_id")).struct.json_encode().alias("j"))
        .group_by("case_id", maintain_order=True)
        .agg(pl.col("j").str.join("\n"))
    )
    return {
        cid: hashlib.sha256(text.encode("utf-8")).hexdigest() for cid, text in lines.iter_rows()
    }


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _insert(session: Session, table, rows: list[dict[str, Any]]) -> None:
    for part in _chunks(rows, INSERT_BATCH):
        session.execute(table.__table__.insert(), part)


def default_interval_key(run_dir: Path) -> str:
    """The run's interval from run.json when it has one, else the directory's name."""
    info = run_dir / "run.json"
    if info.exists():
        try:
            params = json.loads(info.read_text(encoding="utf-8")).get("params") or {}
            if params.get("interval_start") and params.get("interval_end"):
                return f"{params['interval_start']}--{params['interval_end']}"
        except (OSError, ValueError):
            pass
    return run_dir.resolve().name


def prepare_run(run_dir: str | Path) -> dict[str, pl.DataFrame]:
    """The run's tables shaped like the store's: cases, typologies, signals, accounts,
    transactions (each with case_id). Raises InputError naming a missing file or column."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("run directory not found", file=run_dir)
    cases_path = run_dir / "cases.parquet"
    cases = _read(cases_path, True)
    _need(cases, ("case_id", "risk_score", "accounts"), cases_path)
    signals_path = run_dir / "signals.parquet"
    signals = _read(signals_path, True)
    _need(signals, ("source", "signal_id", "account_id", "score"), signals_path)
    scored = _read(run_dir / "accounts_scored.parquet", False)
    accounts = _read(run_dir / "accounts.parquet", False)
    txns_path = run_dir / "transactions.parquet"
    warnings = []

    cases = _with_optional(cases, ("rank", "n_signals", "n_accounts"), pl.Int64())
    cases = _with_optional(cases, ("anchor_account", "central_account", "summary"), pl.String())
    cases = _with_optional(cases, ("total_amount",), pl.Float64())
    cases = _with_optional(cases, ("first_ts", "last_ts"), pl.Datetime("us", "UTC"))
    for c in ("typologies", "families", "signal_ids", "txn_ids"):
        if c not in cases.columns:
            cases = cases.with_columns(pl.lit([], dtype=pl.List(pl.String())).alias(c))
    cases = cases.with_columns(
        pl.col("anchor_account").fill_null(pl.col("accounts").list.first()),
        pl.col("n_accounts").fill_null(pl.col("accounts").list.len()).cast(pl.Int64),
        pl.col("total_amount").fill_null(0.0),
        pl.col("summary").fill_null(""),
    ).unique("case_id", keep="first", maintain_order=True)

    members = (
        cases.select("case_id", "accounts", "anchor_account", "central_account")
        .explode("accounts")
        .rename({"accounts": "account_id"})
        .drop_nulls("account_id")
        .with_columns(pl.int_range(pl.len()).over("case_id").cast(pl.Int64).alias("position"))
        .with_columns(
            pl.when(pl.col("account_id") == pl.col("anchor_account"))
            .then(pl.lit("anchor"))
            .when(pl.col("account_id") == pl.col("central_account"))
            .then(pl.lit("central"))
            .otherwise(pl.lit("member"))
            .alias("role")
        )
        .drop("anchor_account", "central_account")
        .unique(["case_id", "account_id"], keep="first", maintain_order=True)
    )

    # accounts: scores and party attributes
    acc = members
    if scored is not None:
        keep = [c for c in ("account_id", *ACCOUNT_SCORE_COLUMNS) if c in scored.columns]
        acc = acc.join(scored.select(keep).unique("account_id"), on="account_id", how="left")
    acc = _with_optional(acc, ("risk_score", "signal_risk", "anomaly_score"), pl.Float64())
    acc = _with_optional(acc, ("n_signals",), pl.Int64())
    if "families" not in acc.columns:
        acc = acc.with_columns(pl.lit([], dtype=pl.List(pl.String())).alias("families"))
    if accounts is not None:
        keep = [
            c for c in ("account_id", *ACCOUNT_COLUMNS, *ACCOUNT_DETAILS) if c in accounts.columns
        ]
        acc = acc.join(accounts.select(keep).unique("account_id"), on="account_id", how="left")
    else:
        warnings.append("accounts.parquet not in the run: account names and details left empty")
    acc = _with_optional(acc, ("name", "kind", "bank_id", "party_id", "country"), pl.String())
    acc = _with_optional(acc, ("opened_at",), pl.Datetime("us", "UTC"))
    details = [c for c in ACCOUNT_DETAILS if c in acc.columns]
    acc = acc.with_columns(
        (
            pl.struct([pl.col(c).cast(pl.String) for c in details]).struct.json_encode()
            if details
            else pl.lit("{}")
        ).alias("details"),
        pl.col("opened_at").cast(pl.Datetime("us", "UTC")),
        _json_list("families"),
    ).select(
        "case_id",
        "account_id",
        "position",
        "role",
        *ACCOUNT_SCORE_COLUMNS,
        *ACCOUNT_COLUMNS,
        "details",
    )

    # signals of the case's accounts
    sig = signals.join(members.select("case_id", "account_id"), on="account_id", how="inner")
    sig = _with_optional(sig, ("family", "evidence", "summary"), pl.String())
    sig = _with_optional(sig, ("window_start", "window_end"), pl.Datetime("us", "UTC"))
    for c in ("typologies", "txn_ids"):
        if c not in sig.columns:
            sig = sig.with_columns(pl.lit([], dtype=pl.List(pl.String())).alias(c))
    sig = (
        sig.with_columns(
            pl.col("family").fill_null("unknown"),
            pl.col("evidence").fill_null("{}"),
            pl.col("summary").fill_null(""),
            pl.col("window_start").cast(pl.Datetime("us", "UTC")),
            pl.col("window_end").cast(pl.Datetime("us", "UTC")),
            _json_list("typologies"),
            _json_list("txn_ids"),
        )
        .sort(
            ["case_id", "score", "source", "signal_id", "account_id", "evidence"],
            descending=[False, True, False, False, False, False],
        )
        .with_columns(pl.int_range(pl.len()).over("case_id").cast(pl.Int64).alias("seq"))
        .select(
            "case_id",
            "seq",
            "source",
            "signal_id",
            "account_id",
            "score",
            "family",
            "typologies",
            "txn_ids",
            "window_start",
            "window_end",
            "evidence",
            "summary",
        )
    )

    # the case's transactions
    ids = (
        cases.select("case_id", "txn_ids")
        .explode("txn_ids")
        .rename({"txn_ids": "txn_id"})
        .drop_nulls("txn_id")
        .unique(["case_id", "txn_id"])
    )
    if txns_path.exists():
        try:
            scan = pl.scan_parquet(txns_path)
            names = scan.collect_schema().names()
            keep = [c for c in ("txn_id", *TXN_COLUMNS) if c in names]
            # only the case transactions: a semi join before anything else (runs have millions)
            wanted = (
                scan.select(keep)
                .join(ids.select("txn_id").unique().lazy(), on="txn_id", how="semi")
                .collect()
                .unique("txn_id", keep="first")
            )
        except Exception as exc:
            raise InputError(f"cannot read Parquet: {exc}", file=txns_path) from None
        tx = ids.join(wanted, on="txn_id", how="left")
    else:
        tx = ids
        warnings.append("transactions.parquet not in the run: case transactions stored by id only")
    tx = _with_optional(tx, ("amount", "amount_base"), pl.Float64())
    tx = _with_optional(tx, ("ts",), pl.Datetime("us", "UTC"))
    tx = _with_optional(
        tx, [c for c in TXN_COLUMNS if c not in ("ts", "amount", "amount_base")], pl.String()
    )
    tx = tx.with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        *[pl.col(c).cast(pl.String) for c in ("mcc", "memo", "location_id", "device_id")],
    ).select("case_id", "txn_id", *TXN_COLUMNS)

    typ = (
        cases.select("case_id", "typologies")
        .explode("typologies")
        .rename({"typologies": "typology"})
        .drop_nulls("typology")
        .unique(["case_id", "typology"], keep="first", maintain_order=True)
        .with_columns(pl.int_range(pl.len()).over("case_id").cast(pl.Int64).alias("position"))
    )
    n_txn = tx.group_by("case_id").len("n_transactions")
    case_rows = (
        cases.join(n_txn, on="case_id", how="left")
        .with_columns(
            pl.col("n_transactions").fill_null(0).cast(pl.Int64),
            pl.col("typologies").list.first().alias("primary_typology"),
            pl.col("n_signals").fill_null(0).cast(pl.Int64),
            pl.col("first_ts").cast(pl.Datetime("us", "UTC")),
            pl.col("last_ts").cast(pl.Datetime("us", "UTC")),
            _json_list("typologies"),
            _json_list("families"),
            _json_list("signal_ids"),
        )
        .select("case_id", "rank", *CASE_COLUMNS, "primary_typology", "n_transactions")
    )
    return {
        "cases": case_rows,
        "typologies": typ,
        "signals": sig,
        "accounts": acc,
        "transactions": tx,
        "warnings": warnings,  # type: ignore[dict-item]
    }


def _fingerprints(t: dict[str, pl.DataFrame]) -> dict[str, str]:
    """Per case: sha256 over its evidence (rank excluded: it moves when other cases change)."""
    parts = [
        _digests(t["cases"].drop("rank"), []),
        _digests(t["signals"], ["seq"]),
        _digests(t["accounts"], ["account_id"]),
        _digests(t["transactions"], ["txn_id"]),
    ]
    out = {}
    for cid in t["cases"]["case_id"].to_list():
        h = hashlib.sha256()
        for p in parts:
            h.update(p.get(cid, "-").encode())
        out[cid] = h.hexdigest()
    return out


def _state(row: dict[str, Any] | Case) -> dict[str, Any]:
    """What the audit log keeps about a case's evidence."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    return {
        "risk_score": get("risk_score"),
        "n_accounts": get("n_accounts"),
        "n_signals": get("n_signals"),
        "n_transactions": get("n_transactions"),
        "typologies": json.loads(get("typologies") or "[]"),
        "total_amount": get("total_amount"),
        "fingerprint": get("fingerprint"),
    }


def load_run(
    session: Session,
    run_dir: str | Path,
    interval_key: str | None = None,
    *,
    actor: str = "system",
) -> LoadResult:
    """Upsert the run's cases with their evidence; see the module docstring. Does not commit
    (use `with store.session() as s: load_run(s, ...)`)."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    key = interval_key or default_interval_key(run_dir)
    tables = prepare_run(run_dir)
    result = LoadResult(interval_key=key, warnings=list(tables.pop("warnings")))  # type: ignore[arg-type]
    fps = _fingerprints(tables)
    run_fp = hashlib.sha256("".join(f"{k}{v}" for k, v in sorted(fps.items())).encode()).hexdigest()
    cases = tables["cases"].with_columns(
        pl.col("case_id").replace_strict(fps, default=None).alias("fingerprint")
    )
    incoming = cases["case_id"].to_list()
    result.cases = len(incoming)

    existing: dict[str, tuple[str, int | None, str | None, str | None]] = {}
    for part in _chunks(incoming):
        for cid, fp, rank, first, last in session.execute(
            select(
                Case.case_id, Case.fingerprint, Case.rank, Case.first_interval, Case.last_interval
            ).where(Case.case_id.in_(part))
        ):
            existing[cid] = (fp, rank, first, last)
    seen_here: dict[str, tuple[float, int | None]] = {}
    for part in _chunks(incoming):
        for cid, risk, rank in session.execute(
            select(CaseInterval.case_id, CaseInterval.risk_score, CaseInterval.rank).where(
                CaseInterval.interval_key == key, CaseInterval.case_id.in_(part)
            )
        ):
            seen_here[cid] = (risk, rank)

    now = utcnow()
    rows = {r["case_id"]: r for r in cases.to_dicts()}
    new_ids = [c for c in incoming if c not in existing]
    # a case's evidence comes from the latest interval that saw it: an older run loaded late
    # only records that the case was seen then
    later = {c for c in incoming if c in existing and (existing[c][3] or "") <= key}
    changed_ids = [c for c in incoming if c in later and existing[c][0] != rows[c]["fingerprint"]]
    result.new, result.updated = len(new_ids), len(changed_ids)
    result.unchanged = result.cases - result.new - result.updated
    result.new_case_ids, result.updated_case_ids = new_ids, changed_ids

    # interval bookkeeping and rank moves (no audit entry: not evidence)
    rank_moves = [
        {"case_id": c, "rank": rows[c]["rank"], "last_interval": key}
        for c in incoming
        if c in later
        and c not in changed_ids
        and (existing[c][1] != rows[c]["rank"] or existing[c][3] != key)
    ]
    if rank_moves:
        session.execute(update(Case), rank_moves)
    earlier = [
        {"case_id": c, "first_interval": key}
        for c in incoming
        if c in existing and existing[c][2] is not None and key < existing[c][2]
    ]
    if earlier:
        session.execute(update(Case), earlier)
    new_seen = [
        {
            "case_id": c,
            "interval_key": key,
            "risk_score": rows[c]["risk_score"],
            "rank": rows[c]["rank"],
        }
        for c in incoming
        if c not in seen_here
    ]
    moved_seen = [
        {
            "case_id": c,
            "interval_key": key,
            "risk_score": rows[c]["risk_score"],
            "rank": rows[c]["rank"],
        }
        for c in incoming
        if c in seen_here and seen_here[c] != (rows[c]["risk_score"], rows[c]["rank"])
    ]

    if changed_ids:
        for table in (CaseTypology, CaseSignal, CaseAccount, CaseTransaction):
            for part in _chunks(changed_ids):
                session.execute(delete(table).where(table.case_id.in_(part)))
        before = {}
        for part in _chunks(changed_ids):
            for c in session.scalars(select(Case).where(Case.case_id.in_(part))):
                before[c.case_id] = _state(c)
        ups = []
        for c in changed_ids:
            r = dict(rows[c])
            r["evidence_updated_at"] = now
            r["updated_at"] = now
            r["last_interval"] = key
            ups.append(r)
        session.execute(update(Case), ups)

    if new_ids:
        _insert(
            session,
            Case,
            [
                {
                    **rows[c],
                    "first_interval": key,
                    "last_interval": key,
                    "first_seen_at": now,
                    "evidence_updated_at": now,
                    "updated_at": now,
                    "status": "new",
                }
                for c in new_ids
            ],
        )
    write = new_ids + changed_ids
    if write:
        keep = pl.Series(write, dtype=pl.String)
        for name, table in (
            ("typologies", CaseTypology),
            ("signals", CaseSignal),
            ("accounts", CaseAccount),
            ("transactions", CaseTransaction),
        ):
            part = tables[name].filter(pl.col("case_id").is_in(keep.implode()))
            _insert(session, table, part.to_dicts())
            if name != "typologies":
                setattr(result, name, part.height)
    if new_seen:
        _insert(session, CaseInterval, new_seen)
    if moved_seen:
        session.execute(update(CaseInterval), moved_seen)

    entries = [
        {
            "actor": actor,
            "action": "case.created",
            "entity_type": "case",
            "entity_id": c,
            "before": {},
            "after": {**_state(rows[c]), "interval": key},
            "ts": now,
        }
        for c in new_ids
    ] + [
        {
            "actor": actor,
            "action": "case.evidence_updated",
            "entity_type": "case",
            "entity_id": c,
            "before": before[c],
            "after": {**_state(rows[c]), "interval": key},
            "ts": now,
        }
        for c in changed_ids
    ]
    run = session.get(Run, key)
    if run is None or run.fingerprint != run_fp or run.n_cases != result.cases:
        entries.append(
            {
                "actor": actor,
                "action": "run.loaded",
                "entity_type": "run",
                "entity_id": key,
                "before": {"fingerprint": run.fingerprint, "cases": run.n_cases} if run else {},
                "after": {
                    "fingerprint": run_fp,
                    "cases": result.cases,
                    "new": result.new,
                    "updated": result.updated,
                    "run_dir": str(run_dir),
                },
                "ts": now,
            }
        )
        if run is None:
            session.add(
                Run(
                    interval_key=key,
                    run_dir=str(run_dir),
                    fingerprint=run_fp,
                    n_cases=result.cases,
                    loaded_at=now,
                )
            )
        else:
            run.fingerprint, run.n_cases, run.run_dir, run.loaded_at = (
                run_fp,
                result.cases,
                str(run_dir),
                now,
            )
    audit.record_many(session, entries)
    session.flush()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result
