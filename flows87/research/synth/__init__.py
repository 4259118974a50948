"""Labelled synthetic bank data with trafficking and laundering schemes (SDG 8.7).

`generate` draws a bank population (customers, merchants, foreign counterparties, cash points),
a window of innocent everyday transactions including look-alikes that trip naive rules, and
injected schemes of every typology in `TYPOLOGIES`, each labelled with `is_suspicious`,
`typology` and `scheme_id` on its transactions and member accounts. Each scheme shows a random
subset of its typology's optional red flags, and every flag appears in some scheme (when the
population has room for it), so every rule of the catalogue has labelled positives to measure.
The same seed gives the same frames. Times are UTC and the synthetic bank's local time is UTC
("night" means 22:00-04:00 UTC). Location ids read `<BR|ATM|POS>-C<city>-<n>`; cash deposits
come from, and withdrawals go to, a pseudo-account `CASH:<location_id>` per branch or ATM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from flows87.errors import ConfigError
from flows87.research.synth import assemble, background, lookalikes, population, schemes
from flows87.research.synth.catalog import HOME_COUNTRY, TYPOLOGIES
from flows87.research.synth.parts import concat

__all__ = ["generate", "SynthData", "TYPOLOGIES", "MIN_ACCOUNTS", "MIN_DAYS", "MAX_SHARE"]

MIN_ACCOUNTS = 800  # room for two schemes of every typology among ordinary customers
MIN_DAYS = 7  # schemes need about a week to show their shape
MAX_SHARE = 0.2


@dataclass
class SynthData:
    transactions: pl.DataFrame
    accounts: pl.DataFrame


def _check(accounts: int, days: int, seed: int, base_currency: str, share: float) -> None:
    if not isinstance(accounts, int) or accounts < MIN_ACCOUNTS:
        raise ConfigError(
            f"accounts must be an integer >= {MIN_ACCOUNTS}, got {accounts!r}", column="accounts"
        )
    if not isinstance(days, int) or days < MIN_DAYS:
        raise ConfigError(
            f"days must be an integer >= {MIN_DAYS}, got {days!r}",
            column="days",
            hint="schemes such as structuring and trafficking span about a week",
        )
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}", column="seed")
    if base_currency not in HOME_COUNTRY:
        raise ConfigError(
            f"unsupported base currency {base_currency!r}",
            column="base_currency",
            hint=f"use one of {', '.join(HOME_COUNTRY)}",
        )
    if not 0 <= share <= MAX_SHARE:
        raise ConfigError(
            f"suspicious_share must be within [0, {MAX_SHARE}], got {share!r}",
            column="suspicious_share",
        )


def generate(
    accounts: int = 10_000,
    days: int = 30,
    seed: int = 0,
    *,
    start: date = date(2026, 1, 1),
    base_currency: str = "USD",
    suspicious_share: float = 0.01,
    progress: Callable[[str, float], None] | None = None,
) -> SynthData:
    """A labelled synthetic bank: `accounts` accounts (all counterparties included) over `days`
    days from `start`, about one transaction per account per day.

    About `suspicious_share` of the accounts are scheme members, with every typology present
    at least twice when the share is above zero (so small populations overshoot the share);
    0 gives a clean population. `progress(step, fraction_done)` is called before each phase.
    """
    _check(accounts, days, seed, base_currency, suspicious_share)
    report = progress or (lambda step, done: None)
    s_pop, s_schemes, s_background = np.random.SeedSequence(seed).spawn(3)

    report("population", 0.0)
    pop = population.build(np.random.default_rng(s_pop), accounts, start, days, base_currency)
    report("schemes", 0.05)  # fractions follow the measured share of time per phase
    injected = schemes.inject(pop, s_schemes, suspicious_share)
    report("background", 0.08)
    rng = np.random.default_rng(s_background)
    touched = np.zeros(pop.n, bool)
    touched[np.concatenate([injected.src, injected.dst])] = True
    lookalikes.families_opening_together(pop, rng, touched)
    innocent = background.valid(
        pop, concat([background.everyday(pop, rng), lookalikes.lookalikes(pop, rng)])
    )
    report("assemble", 0.4)
    locations = assemble.location_ids(pop)
    ids = assemble.account_ids(pop, locations)
    data = SynthData(
        transactions=assemble.transactions_frame(pop, concat([innocent, injected]), ids, locations),
        accounts=assemble.accounts_frame(pop, ids, locations),
    )
    report("done", 1.0)
    return data
