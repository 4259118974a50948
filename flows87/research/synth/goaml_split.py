"""Schemes split over several banks: a key person's accounts at two or three banks.

A launderer who knows banks report does not run a funnel, a controller's takings or a
structuring run through one account: they open accounts at other banks and spread the flows, so
each bank sees only a piece (it is why FIUs resolve parties across reports). `split_schemes`
does that to a share of the schemes after they were generated, so the canonical population
stays as it is: per scheme of `SPLIT_TYPOLOGIES` its key person (the member holding accounts
with the most scheme counterparties among the other members: the controller, the mule hub;
for a funnel or a structurer, the only holder) gets one or two new accounts at domestic banks
where they had none, copies of their own account (same party and identity, so the writer gives
them the same identity number), opened weeks before first use. The scheme's money into the key
person is then spread over their accounts by payer (each victim or mule pays one account, each
cash point serves one; structuring, deposit by deposit), and what they pay out leaves from any
of them. Labels stay exact: new accounts carry the scheme's label, every account in the split
keeps at least one of the scheme's transactions, and transactions keep their ids and labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from flows87.research.synth import SynthData
from flows87.research.synth.goaml_names import rng_for
from flows87.research.synth.goaml_select import clients

__all__ = ["SPLIT_SHARE", "SPLIT_TYPOLOGIES", "Split", "key_persons", "split_schemes"]

SPLIT_SHARE = 0.5  # of the key persons, the share who spread their scheme over banks
SPLIT_TYPOLOGIES = (
    "funnel_account",
    "structuring",
    "sex_trafficking",
    "labour_exploitation",
    "mule_network",
)
BY_DEPOSIT = frozenset({"structuring"})  # inflows spread deposit by deposit, not by payer
_SPLIT_SCHEMA = {
    "scheme_id": pl.String,
    "typology": pl.String,
    "party_id": pl.String,
    "account_id": pl.String,
    "bank_id": pl.String,
    "added": pl.Boolean,
    "transactions": pl.Int64,
}


@dataclass(frozen=True)
class Split:
    data: SynthData
    accounts: pl.DataFrame  # one row per account of a split key person (_SPLIT_SCHEMA)

    @property
    def persons(self) -> int:
        return self.accounts["scheme_id"].n_unique() if self.accounts.height else 0


def key_persons(data: SynthData, typologies: tuple[str, ...] = SPLIT_TYPOLOGIES) -> pl.DataFrame:
    """Per scheme of `typologies`: scheme_id, typology, party_id and the key person's member
    accounts (domestic individual accounts only)."""
    members = (
        clients(data.accounts)
        .filter(
            pl.col("is_suspicious").fill_null(False),
            pl.col("kind") == "individual",
            pl.col("typology").is_in(typologies),
        )
        .select("account_id", "party_id", "scheme_id", "typology")
    )
    tx = data.transactions.filter(
        pl.col("is_suspicious").fill_null(False), pl.col("typology").is_in(typologies)
    )
    ends = pl.concat(
        [
            tx.select("scheme_id", "txn_id", account="src_account", other="dst_account"),
            tx.select("scheme_id", "txn_id", account="dst_account", other="src_account"),
        ]
    ).join(members.rename({"account_id": "account"}), on=["account", "scheme_id"])
    other_member = pl.col("other").is_in(members["account_id"].implode())
    score = (
        ends.group_by("scheme_id", "typology", "party_id")
        .agg(
            pl.col("other").filter(other_member).n_unique().alias("partners"),
            pl.col("txn_id").n_unique().alias("txns"),
            pl.col("account").unique().sort().alias("accounts"),
        )
        .sort(["scheme_id", "partners", "txns", "party_id"], descending=[False, True, True, False])
    )
    return score.unique("scheme_id", keep="first", maintain_order=True).select(
        "scheme_id", "typology", "party_id", "accounts"
    )


def _new_id(bank: str, rng_key: tuple[object, ...], taken: set[str]) -> str:
    rng = rng_for(*rng_key)
    while True:
        account = f"{bank}-{rng.randrange(10**10):010d}"
        if account not in taken:
            taken.add(account)
            return account


def split_schemes(
    data: SynthData,
    share: float = SPLIT_SHARE,
    seed: int = 0,
    typologies: tuple[str, ...] = SPLIT_TYPOLOGIES,
) -> Split:
    """The population with a `share` of the key persons' schemes spread over banks."""
    empty = pl.DataFrame(schema=_SPLIT_SCHEMA)
    if share <= 0:
        return Split(data, empty)
    acc = data.accounts
    banks = sorted(clients(acc)["bank_id"].unique().to_list())
    row_of = {r["account_id"]: r for r in acc.iter_rows(named=True)}
    taken = set(row_of)
    tx = data.transactions.filter(pl.col("is_suspicious").fill_null(False))
    new_rows: list[dict] = []
    moved: dict[tuple[str, str], str] = {}  # (txn_id, end) -> account
    rows: list[dict] = []
    for scheme, typ, party, accounts in key_persons(data, typologies).iter_rows():
        rng = rng_for(seed, "split", scheme)
        if rng.random() >= share:
            continue
        held = sorted({row_of[a]["bank_id"] for a in accounts})
        free = [b for b in banks if b not in held]
        mine = tx.filter(
            (pl.col("scheme_id") == scheme)
            & (pl.col("src_account").is_in(accounts) ^ pl.col("dst_account").is_in(accounts))
        ).sort("ts", "txn_id")
        inflow = mine.filter(pl.col("dst_account").is_in(accounts))
        keys = sorted(set(inflow["txn_id" if typ in BY_DEPOSIT else "src_account"].to_list()))
        wanted = max(1, rng.choice((2, 3)) - len(held))
        n_new = min(wanted, len(free), len(keys) - len(accounts))
        if n_new < 1:
            continue
        added = {
            _new_id(bank, (seed, "split-account", scheme, bank), taken): bank
            for bank in rng.sample(free, n_new)
        }
        pool = [*added, *accounts]  # new accounts first: each is sure of an inflow
        rng.shuffle(keys)
        holder = {k: pool[i % len(pool)] for i, k in enumerate(keys)}
        used: dict[str, list] = {a: [] for a in pool}  # account -> times of its scheme moves
        for t in mine.iter_rows(named=True):
            if t["dst_account"] in accounts:
                end, to = "dst_account", holder[t["txn_id" if typ in BY_DEPOSIT else "src_account"]]
            else:
                end, to = "src_account", pool[rng.randrange(len(pool))]
            moved[(t["txn_id"], end)] = to
            used[to].append(t["ts"])
        base = row_of[accounts[0]]
        for account, bank in added.items():
            opened = min(used[account]) - timedelta(days=rng.randrange(14, 120))
            new_rows.append(
                {
                    **base,
                    "account_id": account,
                    "bank_id": bank,
                    "opened_at": opened.replace(microsecond=0),
                    "source_row": None,
                }
            )
        for account in pool:
            rows.append(
                {
                    "scheme_id": scheme,
                    "typology": typ,
                    "party_id": party,
                    "account_id": account,
                    "bank_id": row_of[account]["bank_id"] if account in row_of else added[account],
                    "added": account in added,
                    "transactions": len(used[account]),
                }
            )
    if not rows:
        return Split(data, empty)
    accounts_out = pl.concat([acc, pl.DataFrame(new_rows, schema=acc.schema, orient="row")]).sort(
        "account_id"
    )
    txns = data.transactions
    for end in ("src_account", "dst_account"):
        ids = [t for (t, e) in moved if e == end]
        if not ids:
            continue
        change = pl.DataFrame(
            {"txn_id": ids, "_to": [moved[(t, end)] for t in ids]},
            schema={"txn_id": pl.String, "_to": pl.String},
        )
        txns = (
            txns.join(change, on="txn_id", how="left", maintain_order="left")
            .with_columns(pl.coalesce("_to", end).alias(end))
            .drop("_to")
        )
    split = pl.DataFrame(rows, schema=_SPLIT_SCHEMA).sort("scheme_id", "account_id")
    return Split(SynthData(transactions=txns, accounts=accounts_out), split)
