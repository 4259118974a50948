"""The synthetic population as an FIU receives it: goAML reports from several banks.

`write_goaml(data, out)` takes what `generate` made (the same seed gives the same people and
money), spreads a `split` share of the schemes' key persons over accounts at several banks
(goaml_split: a real launderer's answer to banks that report), and writes only what banks report (goaml_select: STRs per bank and scheme, a few false
positives, SARs, large-cash CTRs), each party spelled as that bank and that report spell it
(goaml_names, at a `noise` level), as goAML 5.0.1 XML (goaml_xml) in `<out>/<bank>/<report
id>.xml`, or one `<out>/<bank>.zip` per bank. The truth stays apart in `<out>/truth/`:
parties.parquet (record_id -> true_party_id, for entity resolution), transactions.parquet
(labels per transactionnumber), reports.parquet (why each report was filed), codes.json (the
lookup codes used), split.parquet (the key persons spread over banks: their accounts, new or
not) and canonical/ (the tables the reports were made from, after the split). The reports carry no
labels. Output is byte-for-byte the same for the same inputs: no clock, fixed zip times.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from flows87.errors import ConfigError
from flows87.io import write_parquet
from flows87.research.synth import SynthData
from flows87.research.synth import catalog as cat
from flows87.research.synth.goaml_names import NOISE
from flows87.research.synth.goaml_select import Filing, Report, plan_reports
from flows87.research.synth.goaml_split import SPLIT_SHARE, split_schemes
from flows87.research.synth.goaml_xml import CODES, FUNDS, FUNDS_DEFAULT, TRANSMODE, Writer

__all__ = ["write_goaml", "spelling_share", "NOISE_LEVELS", "Written"]

NOISE_LEVELS = tuple(NOISE)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Written:
    reports: int
    by_code: dict[str, int]
    banks: int
    transactions: int
    party_records: int
    spelling: dict[str, float]  # spelling_share of the party records
    split_persons: int = 0  # key persons whose scheme was spread over banks


def _truth_transactions(data: SynthData, reports: list[Report]) -> pl.DataFrame:
    rows = [(t, r.report_id) for r in reports for t in r.txn_ids]
    named = pl.DataFrame(rows, schema={"txn_id": pl.String, "report_id": pl.String}, orient="row")
    per_txn = named.group_by("txn_id").agg(pl.col("report_id").sort().alias("report_ids"))
    return (
        data.transactions.join(per_txn, on="txn_id")
        .select(
            pl.col("txn_id").alias("transactionnumber"),
            "ts",
            "src_account",
            "dst_account",
            "amount_base",
            "is_suspicious",
            "typology",
            "scheme_id",
            "report_ids",
            pl.col("report_ids").list.len().alias("reported_by"),
        )
        .sort("transactionnumber")
    )


def _truth_reports(reports: list[Report]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "report_id": [r.report_id for r in reports],
            "file": [r.path for r in reports],
            "bank_id": [r.bank for r in reports],
            "report_code": [r.code for r in reports],
            "purpose": [r.purpose for r in reports],
            "scheme_id": [r.scheme_id for r in reports],
            "transactions": [len(r.txn_ids) for r in reports],
            "subjects": [len(r.subjects) for r in reports],
        },
        schema_overrides={"scheme_id": pl.String},
    )


def spelling_share(parties: pl.DataFrame) -> dict[str, float]:
    """Of the persons the reports name, the share written in more than one way (all persons,
    and those named in at least two records)."""
    per = (
        parties.filter(pl.col("kind") == "person")
        .group_by("true_party_id")
        .agg(
            pl.len().alias("records"),
            pl.col("written_name").str.to_lowercase().n_unique().alias("spellings"),
        )
    )
    many = per.filter(pl.col("records") >= 2)

    def share(frame: pl.DataFrame) -> float:
        return int((frame["spellings"] > 1).sum()) / frame.height if frame.height else 0.0

    return {"persons": float(per.height), "share_all": share(per), "share_repeated": share(many)}


def write_goaml(
    data: SynthData,
    out: str | Path,
    *,
    seed: int = 0,
    noise: str = "default",
    base_currency: str = "USD",
    zip_banks: bool = False,
    filing: Filing | None = None,
    split: float = SPLIT_SHARE,
    progress: Callable[[str, float], None] | None = None,
) -> Written:
    """Write the reports and the truth under `out`; returns counts for a summary line.
    `split` (0 to 1): the share of the schemes' key persons given accounts at two or three banks
    (0 writes the population as generated)."""
    if noise not in NOISE:
        raise ConfigError(f"unknown noise level {noise!r}", hint=f"use one of {', '.join(NOISE)}")
    if not 0 <= split <= 1:
        raise ConfigError(f"split must be within [0, 1], got {split!r}", column="split")
    report = progress or (lambda step, done: None)
    out = Path(out)
    report("planning reports", 0.0)
    spread = split_schemes(data, split, seed)
    data = spread.data
    reports = plan_reports(data, seed, filing)
    for r in reports:
        r.zipped = zip_banks
    wanted = {t for r in reports for t in r.txn_ids}
    tx = data.transactions.filter(pl.col("txn_id").is_in(sorted(wanted)))
    writer = Writer(
        accounts={a["account_id"]: a for a in data.accounts.iter_rows(named=True)},
        transactions={t["txn_id"]: t for t in tx.iter_rows(named=True)},
        seed=seed,
        noise=NOISE[noise],
        currency=base_currency,
        home=cat.HOME_COUNTRY[base_currency],
    )
    archives: dict[str, zipfile.ZipFile] = {}
    out.mkdir(parents=True, exist_ok=True)
    try:
        for i, r in enumerate(reports):
            if i % 200 == 0:
                report("writing reports", 0.05 + 0.85 * i / max(len(reports), 1))
            xml = writer.report(r)
            if zip_banks:
                if r.bank not in archives:
                    archives[r.bank] = zipfile.ZipFile(out / f"{r.bank}.zip", "w")
                info = zipfile.ZipInfo(f"{r.report_id}.xml", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archives[r.bank].writestr(info, xml)
            else:
                path = out / r.path
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(xml)
    finally:
        for archive in archives.values():
            archive.close()
    report("writing truth", 0.9)
    truth = out / "truth"
    parties = pl.DataFrame(writer.records)
    write_parquet(parties, truth / "parties.parquet")
    write_parquet(_truth_transactions(data, reports), truth / "transactions.parquet")
    write_parquet(_truth_reports(reports), truth / "reports.parquet")
    write_parquet(spread.accounts, truth / "split.parquet")
    write_parquet(data.accounts, truth / "canonical" / "accounts.parquet")
    write_parquet(data.transactions, truth / "canonical" / "transactions.parquet")
    codes = {
        "transmode_code": TRANSMODE,
        "funds_code": {**FUNDS, "*": FUNDS_DEFAULT},
        "other": CODES,
        "noise": {"level": noise, **asdict(NOISE[noise])},
        "filing": asdict(filing or Filing()),
        "split": split,
    }
    (truth / "codes.json").write_text(json.dumps(codes, indent=2, sort_keys=True) + "\n")
    report("done", 1.0)
    by_code: dict[str, int] = {}
    for r in reports:
        by_code[r.code] = by_code.get(r.code, 0) + 1
    return Written(
        reports=len(reports),
        by_code=by_code,
        banks=len({r.bank for r in reports}),
        transactions=len(wanted),
        party_records=parties.height,
        spelling=spelling_share(parties),
        split_persons=spread.persons,
    )
