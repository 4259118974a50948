"""Turn the integer columns into the canonical tables: ids, strings, UTC times, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from flows87 import schema
from flows87.research.synth import catalog as cat
from flows87.research.synth.parts import Txns
from flows87.research.synth.population import (
    BRANCH,
    BUSINESS,
    CASH,
    FOREIGN_BUSINESS,
    NO_DATE,
    POS,
    Population,
)


def _lookup(values: list[str] | tuple[str, ...], col: str) -> pl.Expr:
    """values[col] as text, null where col is -1."""
    idx = pl.when(pl.col(col) >= 0).then(pl.col(col))
    return pl.lit(pl.Series(list(values), dtype=pl.String)).gather(idx)


def _digits(col: str, width: int, prefix: str = "") -> pl.Expr:
    text = pl.col(col).cast(pl.String).str.zfill(width)
    return pl.when(pl.col(col) >= 0).then(pl.lit(prefix) + text)


def _epoch_us(pop: Population) -> int:
    return (
        int(datetime(pop.start.year, pop.start.month, pop.start.day, tzinfo=UTC).timestamp())
        * 1_000_000
    )


def location_ids(pop: Population) -> pl.Series:
    frame = pl.DataFrame(
        {"kind": pop.loc_kind, "city": pop.loc_city + 1, "i": np.arange(pop.loc_kind.size)}
    )
    prefix = (
        pl.when(pl.col("kind") == BRANCH)
        .then(pl.lit("BR"))
        .when(pl.col("kind") == POS)
        .then(pl.lit("POS"))
        .otherwise(pl.lit("ATM"))
    )
    return frame.select(
        pl.concat_str(
            [prefix, _digits("city", 3, "C"), pl.col("i").cast(pl.String).str.zfill(5)],
            separator="-",
        )
    ).to_series()


def account_ids(pop: Population, locations: pl.Series) -> pl.Series:
    frame = pl.DataFrame(
        {"bank": pop.bank, "number": pop.number, "role": pop.role, "terminal": pop.terminal}
    )
    ordinary = _lookup(pop.bank_codes, "bank") + "-" + _digits("number", 10)
    cash = pl.lit("CASH:") + _lookup(locations.to_list(), "terminal")
    return frame.select(
        pl.when(pl.col("role") == CASH).then(cash).otherwise(ordinary).alias("account_id")
    ).to_series()


def _labels(typ: str, sch: str) -> list[pl.Expr]:
    typology = _lookup(cat.TYPOLOGIES, typ)
    return [
        (pl.col(typ) >= 0).alias("is_suspicious"),
        typology.alias("typology"),
        (typology + "-" + (pl.col(sch) + 1).cast(pl.String).str.zfill(4)).alias("scheme_id"),
    ]


def accounts_frame(pop: Population, ids: pl.Series, locations: pl.Series) -> pl.DataFrame:
    hh = np.maximum(pop.hh, 0)
    city = pop.addr_city[hh]
    frame = pl.DataFrame(
        {
            "account_id": ids,
            "party": pop.party,
            "bank": pop.bank,
            "role": pop.role,
            "opened": pop.opened + _epoch_us(pop),
            "country": pop.country,
            "first": pop.first,
            "last": pop.last,
            "birth": pop.birth,
            "hh": pop.hh,
            "num": pop.addr_num[hh],
            "street": pop.addr_street[hh],
            "city": city,
            "unit": pop.addr_unit[hh],
            "phone": pop.phone,
            "email_no": pop.email_no,
            "device": pop.device,
            "occupation": pop.occupation,
            "btype": pop.btype,
            "terminal": pop.terminal,
            "typ": pop.label_typ,
            "sch": pop.label_sch,
        }
    )
    business = pl.col("role").is_in([BUSINESS, FOREIGN_BUSINESS, CASH])
    words = {b.code: b.word for b in cat.BUSINESS_TYPES}
    first, last = _lookup(cat.FIRST_NAMES, "first"), _lookup(cat.LAST_NAMES, "last")
    biz_name = pl.concat_str(
        [
            last,
            pl.col("btype").replace_strict(words, default="Trading", return_dtype=pl.String),
            pl.lit("LLC"),
        ],
        separator=" ",
    )
    cash_name = pl.lit("Cash ") + _lookup(locations.to_list(), "terminal")
    street = pl.concat_str(
        [pl.col("num").cast(pl.String), _lookup(cat.STREETS, "street")], separator=" "
    )
    unit = pl.when(pl.col("unit") > 0).then(pl.lit(" Apt ") + pl.col("unit").cast(pl.String))
    place = (
        pl.when(pl.col("city") >= 0)
        .then(_lookup(pop.city_names, "city"))
        .otherwise(_lookup(cat.COUNTRIES, "country"))
    )
    address = pl.when(pl.col("hh") >= 0).then(
        pl.concat_str([street, unit.fill_null(""), pl.lit(", "), place])
    )
    calling = cat.CALLING_CODE[cat.COUNTRIES[pop.home]]
    email_user = (
        pl.when(business)
        .then(pl.lit("info.") + last.str.to_lowercase())
        .otherwise(first.str.to_lowercase() + "." + last.str.to_lowercase())
    )
    domain = _lookup(cat.EMAIL_DOMAINS, "dom")
    out = frame.with_columns(dom=pl.col("email_no") % len(cat.EMAIL_DOMAINS)).select(
        "account_id",
        _digits("party", 9, "P").alias("party_id"),
        _lookup(pop.bank_codes, "bank").alias("bank_id"),
        pl.when(business).then(pl.lit("business")).otherwise(pl.lit("individual")).alias("kind"),
        pl.col("opened").cast(schema.UTC_TS).alias("opened_at"),
        _lookup(cat.COUNTRIES, "country").alias("country"),
        pl.when(pl.col("role") == CASH)
        .then(cash_name)
        .when(business)
        .then(biz_name)
        .otherwise(pl.concat_str([first, last], separator=" "))
        .alias("name"),
        pl.when(pl.col("birth") != NO_DATE).then(pl.col("birth")).cast(pl.Date).alias("birth_date"),
        address.alias("address"),
        _digits("phone", 9, f"+{calling} ").alias("phone"),
        pl.when(pl.col("role") != CASH)
        .then(email_user + pl.col("email_no").cast(pl.String) + "@" + domain)
        .alias("email"),
        _digits("device", 12, "D").alias("device_id"),
        _lookup(cat.OCCUPATIONS, "occupation").alias("occupation"),
        _digits("btype", 4).alias("business_type"),
        *_labels("typ", "sch"),
    )
    return schema.conform(out, "accounts").collect().sort("account_id")


def transactions_frame(
    pop: Population, tx: Txns, ids: pl.Series, locations: pl.Series
) -> pl.DataFrame:
    usd = np.asarray([cat.USD_PER_UNIT[c] for c in cat.CURRENCIES])
    base = cat.CURRENCIES.index(pop.base_currency)
    cur = np.where(tx.cur >= 0, tx.cur, base)
    rate = usd[cur] / usd[base]  # base-currency units per unit of `cur`
    amount = np.maximum(np.round(tx.amount / rate, 2), 0.01)
    amount_base = np.where(cur == base, amount, np.maximum(np.round(amount * rate, 2), 0.01))
    digital = np.isin(
        tx.channel, [schema.CHANNELS.index(c) for c in ("p2p", "mobile_money", "crypto")]
    )
    dev = np.where((tx.dev < 0) & digital, pop.device[tx.src], tx.dev)
    n = len(tx)
    frame = pl.DataFrame(
        {
            "t": tx.t + _epoch_us(pop),
            "src": tx.src,
            "dst": tx.dst,
            "amount": amount,
            "cur": cur,
            "amount_base": amount_base,
            "channel": tx.channel,
            "mcc": tx.mcc,
            "sc": pop.country[tx.src],
            "dc": pop.country[tx.dst],
            "loc": tx.loc,
            "dev": dev,
            "memo": tx.memo,
            "typ": tx.typ,
            "sch": tx.sch,
        }
    )
    # stable: equal times keep generation order, so the same seed gives the same txn ids
    frame = frame.sort("t", maintain_order=True).with_columns(i=pl.int_range(n, dtype=pl.Int64))
    width = max(9, len(str(n)))
    out = frame.select(
        _digits("i", width, "T").alias("txn_id"),
        pl.col("t").cast(schema.UTC_TS).alias("ts"),
        pl.lit(ids).gather(pl.col("src")).alias("src_account"),
        pl.lit(ids).gather(pl.col("dst")).alias("dst_account"),
        "amount",
        _lookup(cat.CURRENCIES, "cur").alias("currency"),
        "amount_base",
        _lookup(schema.CHANNELS, "channel").alias("channel"),
        _digits("mcc", 4).alias("mcc"),
        _lookup(cat.COUNTRIES, "sc").alias("src_country"),
        _lookup(cat.COUNTRIES, "dc").alias("dst_country"),
        _lookup(locations.to_list(), "loc").alias("location_id"),
        _digits("dev", 12, "D").alias("device_id"),
        _lookup(cat.MEMOS, "memo").alias("memo"),
        *_labels("typ", "sch"),
    )
    return schema.conform(out, "transactions").collect()
