"""Which transactions reach the FIU, in which reports, filed by which bank.

A bank reports what it sees of its own clients: for each scheme its clients took part in, one
suspicious transaction report (STR) with the scheme's transactions that touched it (a transfer
between two banks' clients is then reported by both); now and then a suspicious-activity report
(SAR) naming the clients instead; a few STRs on innocent clients whose money only looked odd
(false positives); and a cash transaction report (CTR) per client and day with cash at or over
the threshold. Nothing else of the ledger reaches the FIU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flows87.research.synth import SynthData
from flows87.research.synth.goaml_names import rng_for

FOREIGN_BANKS = "0900"  # bank codes from here on are the foreign banks of the generator
CASH_CHANNELS = ("cash_deposit", "cash_withdrawal")
MAX_TRANSACTIONS = 300  # a report with more is split, as goAML portals limit a report's size


@dataclass(frozen=True)
class Filing:
    """How banks report; the defaults are a cautious reading of public FIU statistics."""

    file_share: float = 0.9  # share of (bank, scheme) pairs a bank notices and reports
    activity_share: float = 0.08  # of those, reported as a SAR naming the clients only
    false_positive_share: float = 0.4  # innocent STRs per true STR of a bank
    ctr_threshold: float = 10_000.0  # cash at or over this, in the base currency


@dataclass
class Report:
    bank: str
    code: str  # STR, CTR or SAR (activity)
    purpose: str  # scheme, false_positive, cash or activity (truth only, never written)
    scheme_id: str | None
    txn_ids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)  # accounts named by an activity report
    report_id: str = ""
    zipped: bool = False  # written into <bank>.zip rather than the <bank>/ folder

    @property
    def path(self) -> str:
        """Where the report is, relative to the output folder: also the `<file>` part of its
        record ids, as the goAML reader names a report it finds in that folder."""
        folder = f"{self.bank}.zip" if self.zipped else self.bank
        return f"{folder}/{self.report_id}.xml"


def clients(accounts: pl.DataFrame) -> pl.DataFrame:
    """Accounts held at a domestic (reporting) bank: no foreign accounts, no cash points."""
    return accounts.filter(
        (pl.col("bank_id") < FOREIGN_BANKS) & ~pl.col("account_id").str.starts_with("CASH:")
    )


def _sides(tx: pl.DataFrame, client: pl.DataFrame) -> pl.DataFrame:
    """One row per (transaction, client side): the bank that sees it and its client account."""
    bank = client.select("account_id", "bank_id")
    parts = [
        tx.join(bank, left_on=end, right_on="account_id").with_columns(pl.col(end).alias("client"))
        for end in ("src_account", "dst_account")
    ]
    return pl.concat(parts).unique(["bank_id", "txn_id"], keep="first", maintain_order=True)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + MAX_TRANSACTIONS] for i in range(0, len(ids), MAX_TRANSACTIONS)]


def _scheme_reports(seen: pl.DataFrame, accounts: pl.DataFrame, seed: int, f: Filing) -> list:
    members = accounts.filter(pl.col("scheme_id").is_not_null() & (pl.col("kind") == "individual"))
    reports: list[Report] = []
    groups = (
        seen.filter(pl.col("is_suspicious"))
        .sort("ts", "txn_id")
        .group_by("bank_id", "scheme_id", maintain_order=True)
        .agg("txn_id")
        .sort("bank_id", "scheme_id")
    )
    for bank, scheme, ids in groups.iter_rows():
        rng = rng_for(seed, "file", bank, scheme)
        if rng.random() >= f.file_share:
            continue
        if rng.random() < f.activity_share:
            subjects = members.filter(
                (pl.col("bank_id") == bank) & (pl.col("scheme_id") == scheme)
            )["account_id"].to_list()
            if subjects:
                reports.append(Report(bank, "SAR", "activity", scheme, subjects=sorted(subjects)))
                continue
        for chunk in _chunks(ids):
            reports.append(Report(bank, "STR", "scheme", scheme, txn_ids=chunk))
    return reports


def _false_positives(seen: pl.DataFrame, n_true: dict[str, int], seed: int, f: Filing) -> list:
    """STRs on innocent clients whose money moved in large sums: what a threshold rule flags."""
    innocent = seen.filter(~pl.col("is_suspicious"))
    reports: list[Report] = []
    for bank in sorted(n_true):
        want = max(1, round(f.false_positive_share * n_true[bank]))
        own = innocent.filter(pl.col("bank_id") == bank)
        volume = own.group_by("client").agg(pl.col("amount_base").sum()).sort("client")
        if volume.is_empty():
            continue
        w = volume["amount_base"].to_numpy() ** 1.5
        rng = np.random.default_rng(rng_for(seed, "fp", bank).getrandbits(63))
        chosen = rng.choice(volume.height, min(want, volume.height), replace=False, p=w / w.sum())
        for client in sorted(volume["client"].gather(chosen).to_list()):
            top = own.filter(pl.col("client") == client).top_k(10, by="amount_base")
            ids = top.sort("ts", "txn_id")["txn_id"].to_list()
            reports.append(Report(bank, "STR", "false_positive", None, txn_ids=ids))
    return reports


def _cash_reports(seen: pl.DataFrame, f: Filing) -> list:
    cash = seen.filter(
        pl.col("channel").is_in(CASH_CHANNELS) & (pl.col("amount_base") >= f.ctr_threshold)
    )
    groups = (
        cash.sort("ts", "txn_id")
        .group_by("bank_id", "client", pl.col("ts").dt.date().alias("day"), maintain_order=True)
        .agg("txn_id")
        .sort("bank_id", "day", "client")
    )
    return [
        Report(bank, "CTR", "cash", None, txn_ids=ids) for bank, _, _, ids in groups.iter_rows()
    ]


def plan_reports(data: SynthData, seed: int, filing: Filing | None = None) -> list[Report]:
    """Every report the FIU receives, with ids `<bank>-<code>-<n>` in filing order per bank."""
    f = filing or Filing()
    seen = _sides(data.transactions, clients(data.accounts))
    schemes = _scheme_reports(seen, data.accounts, seed, f)
    n_true: dict[str, int] = {}
    for r in schemes:
        n_true[r.bank] = n_true.get(r.bank, 0) + 1
    for bank in seen["bank_id"].unique().sort().to_list():
        n_true.setdefault(bank, 0)
    reports = schemes + _false_positives(seen, n_true, seed, f) + _cash_reports(seen, f)
    first = dict(zip(data.transactions["txn_id"], data.transactions["ts"], strict=True))
    end = data.transactions["ts"].max()

    def when(r: Report) -> object:
        return first[r.txn_ids[0]] if r.txn_ids else end

    reports.sort(key=lambda r: (r.bank, when(r), r.code, r.scheme_id or "", r.txn_ids[:1]))
    counter: dict[str, int] = {}
    for r in reports:
        counter[r.bank] = counter.get(r.bank, 0) + 1
        r.report_id = f"{r.bank}-{r.code}-{counter[r.bank]:06d}"
    return reports


def rebank(data: SynthData, banks: int, seed: int) -> SynthData:
    """The same people and money spread over `banks` domestic banks (codes 0101, 0102, ...):
    each domestic client account moves to a bank drawn for it; cash points and foreign accounts
    stay. Account ids change with their bank; transactions follow."""
    acc = data.accounts
    movable = clients(acc)["account_id"].to_list()
    rng = np.random.default_rng(rng_for(seed, "banks", banks).getrandbits(63))
    share = rng.dirichlet(np.full(banks, 4.0))
    drawn = rng.choice(banks, len(movable), p=share)
    codes = [f"{101 + b:04d}" for b in drawn]
    new_ids = [f"{c}-{a.split('-', 1)[1]}" for c, a in zip(codes, movable, strict=True)]
    mapping = dict(zip(movable, new_ids, strict=True))
    bank_of = dict(zip(movable, codes, strict=True))
    accounts = acc.with_columns(
        pl.col("account_id").replace_strict(bank_of, default=pl.col("bank_id")).alias("bank_id"),
        pl.col("account_id").replace(mapping),
    ).sort("account_id")
    tx = data.transactions.with_columns(
        pl.col("src_account").replace(mapping), pl.col("dst_account").replace(mapping)
    )
    return SynthData(transactions=tx, accounts=accounts)
