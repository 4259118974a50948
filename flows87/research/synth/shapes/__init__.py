"""Data of the shapes real data has and `flows87 synth` lacks: the shape benchmark's inputs.

Each shape is a plain random background population with ONE shape imposed on it. The background
is a random graph of ordinary accounts (individuals and about 8 % businesses, each with a
heavy-tailed activity weight, payers and payees drawn by it): card purchases at merchants,
bills to utilities, telecoms and landlords, p2p and mobile money, transfers, business wires and
cheques, with lognormal amounts per kind, and wages (about 65 % of individuals are paid by one
employer each, monthly, fortnightly or weekly, the same salary each time); timestamps spread
over the day (business hours peak, wages in the early morning) across `days` days from `start`,
accounts opened months to years before the period, about 3 % of accounts abroad (paying in their
own currency). Shapes:

    random            the background alone: the reference
    hub_in            one hub (a utility) paid once by each of `hub` distinct payers
    hub_out           one hub (a benefits payer) paying each of `hub` distinct payees once,
                      on three pay days
    dense_repeat      `dense_accounts` accounts, each paying `dense_partners` fixed partners in
                      the group again and again: `dense_transfers` transfers among them
    new_accounts      every account opened inside the period (before its first transaction)
    day_resolution    every timestamp at midnight
    round_amounts     every amount one of a handful of round values (100.00 most often)
    self_transfers    `self_transfers` transfers whose payer is its payee
    one_currency      every account domestic, every amount in USD
    fifty_currencies  accounts in `currencies` (up to 50) countries and currencies, USD most
                      common; every currency is used
    chain             a `chain_hops`-hop pass-through chain of new accounts: each passes on
                      the whole amount less a fee of at most 2 % (at most 2/hops, so the
                      amount stays near its start however long the chain) soon after receiving
                      it, within min(3 h, 90 % of the period / hops) on average, the only
                      suspicious transactions: is_suspicious, typology `mule_chain`, scheme_id
                      `mule_chain-0001` (transactions and accounts)

Every other row is labelled `is_suspicious=false`. The imposed transfers replace background
rows, so a shape has `transactions` rows, except that at least half of `transactions` stays
background: `dense_repeat` at its default sizes (2M transfers) has 2.5M rows at 1M. The
background has `accounts` accounts (default transactions / 10), raised to 1.25 x `hub` for the
hubs and 2 x `dense_accounts` for the dense group; hubs and chain accounts are added to it.
Amounts are drawn in USD, converted to the payer's currency and rounded (whole units where one
dollar is 100 units or more); `amount_base` is in USD, so any ISO code is readable. The same
seed gives the same frames, and the shapes that only alter the background (`random`,
`new_accounts`, `day_resolution`, `round_amounts`, `one_currency`) alter the same background.
Everything is drawn as whole numpy columns: 1M rows take a few seconds.

The parts: shapes/accounts.py (the population), flows.py (transfers as columns and how they
are drawn), traffic.py (the everyday background), patterns.py (the imposed shapes), tables.py
(the canonical frames), sizes.py (the shapes' sizes); this module checks and assembles them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows87.errors import ConfigError
from flows87.io import write_parquet
from flows87.research.synth.shapes.accounts import CURRENCIES, USD, population
from flows87.research.synth.shapes.flows import DAY, concat
from flows87.research.synth.shapes.patterns import (
    chain,
    dense_repeat,
    fifty_currencies,
    hub_in,
    hub_out,
    open_in_period,
    self_transfers,
)
from flows87.research.synth.shapes.sizes import Sizes, imposed
from flows87.research.synth.shapes.tables import CHAIN_SCHEME, CHAIN_TYPOLOGY, frames
from flows87.research.synth.shapes.traffic import background

__all__ = [
    "CHAIN_SCHEME",
    "CHAIN_TYPOLOGY",
    "SHAPES",
    "Sizes",
    "generate",
    "generate_to",
    "imposed",
    "plan",
    "write",
]

SHAPES: tuple[str, ...] = (
    "random",
    "hub_in",
    "hub_out",
    "dense_repeat",
    "new_accounts",
    "day_resolution",
    "round_amounts",
    "self_transfers",
    "one_currency",
    "fifty_currencies",
    "chain",
)
"""Every shape, the reference (`random`) first."""


def _check(shape: str, transactions: int, days: int, sizes: Sizes) -> None:
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}", column="shape", hint=", ".join(SHAPES))
    if not isinstance(transactions, int) or transactions < 1_000:
        raise ConfigError(
            f"transactions must be an integer >= 1000, got {transactions!r}",
            column="transactions",
        )
    if not isinstance(days, int) or days < 1:
        raise ConfigError(f"days must be a positive integer, got {days!r}", column="days")
    if not 1 <= sizes.currencies <= len(CURRENCIES):
        raise ConfigError(
            f"currencies must be within [1, {len(CURRENCIES)}], got {sizes.currencies}",
            column="currencies",
        )
    if sizes.dense_accounts <= sizes.dense_partners:
        raise ConfigError("dense_accounts must be more than dense_partners", column="sizes")
    if min(sizes.hub, sizes.dense_transfers, sizes.self_transfers, sizes.chain_hops) < 1:
        raise ConfigError("every size must be positive", column="sizes")


def plan(shape: str, transactions: int, sizes: Sizes, accounts: int | None) -> tuple[int, int]:
    """(background transfers, background accounts) of a shape."""
    extra = imposed(shape, sizes)
    n_txn = max(transactions - extra, transactions // 2) if extra else transactions
    n_acc = accounts or max(transactions // 10, 1_000)
    if shape in ("hub_in", "hub_out"):
        n_acc = max(n_acc, sizes.hub * 5 // 4 + 1)
    if shape == "dense_repeat":
        n_acc = max(n_acc, 2 * sizes.dense_accounts)
    return n_txn, n_acc


def generate(
    shape: str,
    transactions: int = 1_000_000,
    *,
    seed: int = 0,
    days: int = 30,
    start: date = date(2026, 1, 1),
    sizes: Sizes | None = None,
    accounts: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The canonical (transactions, accounts) frames of `shape` (see the module's docstring)."""
    sizes = sizes or Sizes()
    _check(shape, transactions, days, sizes)
    n_txn, n_acc = plan(shape, transactions, sizes, accounts)
    s_pop, s_bg, s_shape, s_ids = np.random.SeedSequence(seed).spawn(4)
    pop = population(np.random.default_rng(s_pop), n_acc)
    flows = background(np.random.default_rng(s_bg), pop, n_acc, n_txn, days)
    rng = np.random.default_rng(s_shape)
    if shape == "hub_in":
        flows = concat([flows, hub_in(rng, pop, n_acc, sizes.hub, days)])
    elif shape == "hub_out":
        flows = concat([flows, hub_out(rng, pop, n_acc, sizes.hub, days)])
    elif shape == "dense_repeat":
        flows = concat([flows, dense_repeat(rng, n_acc, sizes, days)])
    elif shape == "self_transfers":
        flows = concat([flows, self_transfers(rng, pop, n_acc, sizes.self_transfers, days)])
    elif shape == "chain":
        flows = concat([flows, chain(rng, pop, sizes.chain_hops, days)])
    elif shape == "new_accounts":
        open_in_period(rng, pop, flows, days)
    elif shape == "day_resolution":
        flows.t = flows.t // DAY * DAY
    elif shape == "one_currency":
        pop.cur[:] = USD
    elif shape == "fifty_currencies":
        fifty_currencies(rng, pop, flows, sizes.currencies)
    return frames(
        np.random.default_rng(s_ids), pop, flows, start, round_amounts=shape == "round_amounts"
    )


def write(transactions: pl.DataFrame, accounts: pl.DataFrame, out_dir: str | Path) -> Path:
    """Write a canonical input folder (transactions.parquet, accounts.parquet) for `flows87 run`."""
    out = Path(out_dir)
    write_parquet(accounts, out / "accounts.parquet")
    write_parquet(transactions, out / "transactions.parquet")
    return out


def generate_to(shape: str, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Generate `shape` (options as `generate`) into `out_dir`; return a short summary."""
    tx, accounts = generate(shape, **options)
    write(tx, accounts, out_dir)
    return {
        "shape": shape,
        "transactions": tx.height,
        "accounts": accounts.height,
        "suspicious_transactions": int(tx["is_suspicious"].sum()),
        "path": str(out_dir),
    }
