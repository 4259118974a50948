"""The readers on small files in each public format (AMLworld, PaySim, SAML-D, AMLSim, the canonical
tables): mapping, amounts and currencies, labels, accounts."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from ingest_samples import (
    AMLSIM,
    AMLWORLD,
    AMLWORLD_HEADER,
    AMLWORLD_ROW,
    CANONICAL,
    PAYSIM,
    SAMLD,
    by_row,
    frames,
    usd,
)
from polars.testing import assert_frame_equal

from flows87 import schema
from flows87.pipeline.ingest import FORMATS, read
from flows87.pipeline.ingest.common import REJECT_SCHEMA, units_per_usd


def test_every_format_has_a_reader_and_canonical_output():
    for path in (AMLWORLD, PAYSIM, SAMLD, AMLSIM, CANONICAL):
        result = read(path)
        assert result.format in FORMATS
        tx, accounts = frames(result)
        assert tx.schema == schema.schema("transactions")
        assert accounts.schema == schema.schema("accounts")
        assert result.rejects.schema == REJECT_SCHEMA
        assert tx["source_row"].min() == 1


def test_amlworld_maps_columns_and_keeps_zero_padded_banks():
    tx, _ = frames(read(AMLWORLD))
    assert tx.height == 12
    first = by_row(tx, 1)
    assert first["txn_id"] == "HI-Tiny_Trans:1"
    assert first["ts"] == datetime(2022, 9, 1, 0, 20, tzinfo=UTC)
    assert first["src_account"] == "010:8000EBD30"
    assert by_row(tx, 3)["src_account"] == "021174:800737690"
    assert by_row(tx, 4)["dst_account"] == "001120:8006AA910"
    yuan = by_row(tx, 4)
    assert (yuan["amount"], yuan["currency"]) == (10138095.61, "CNY")
    assert yuan["amount_base"] == pytest.approx(usd(10138095.61, "CNY"))
    assert by_row(tx, 8)["amount"] == 1.33e7
    assert by_row(tx, 9)["currency"] == "XBT"
    channels = dict(zip(tx["source_row"], tx["channel"], strict=True))
    assert channels[1] == "other"  # Reinvestment
    assert channels[2] == "cheque"
    assert channels[8] == "wire"
    assert channels[9] == "crypto"
    assert channels[10] == "cash_deposit"
    assert channels[11] == "card"


def test_amlworld_patterns_give_typology_and_scheme():
    result = read(AMLWORLD)
    assert result.sources == [AMLWORLD, AMLWORLD.with_name("HI-Tiny_Patterns.txt")]
    tx, _ = frames(result)
    fan_out = tx.filter(pl.col("source_row").is_in([3, 4, 5]))
    cycle = tx.filter(pl.col("source_row").is_in([6, 7]))
    assert set(fan_out["typology"]) == {"fan_out"}
    assert set(cycle["typology"]) == {"cycle"}
    assert fan_out["scheme_id"].n_unique() == 1 and cycle["scheme_id"].n_unique() == 1
    assert fan_out["scheme_id"][0] != cycle["scheme_id"][0]
    unlisted = by_row(tx, 12)  # laundering, but in no attempt of the patterns file
    assert (unlisted["is_suspicious"], unlisted["typology"], unlisted["scheme_id"]) == (
        True,
        "laundering",
        None,
    )
    clean = tx.filter(~pl.col("is_suspicious"))
    assert clean.height == 6
    assert clean["typology"].null_count() == clean.height


def test_amlworld_without_patterns_file_labels_laundering(tmp_path):
    path = tmp_path / "HI-Tiny_Trans.csv"
    shutil.copy(AMLWORLD, path)
    result = read(path)
    tx, _ = frames(result)
    assert result.sources == [path]
    suspicious = tx.filter(pl.col("is_suspicious"))
    assert suspicious.height == 6
    assert set(suspicious["typology"]) == {"laundering"}
    assert suspicious["scheme_id"].null_count() == 6


def test_amlworld_accounts_are_derived_from_both_sides():
    tx, accounts = frames(read(AMLWORLD))
    seen = set(tx["src_account"]) | set(tx["dst_account"])
    assert set(accounts["account_id"]) == seen
    assert accounts["account_id"].is_unique().all()
    assert set(accounts["kind"]) == {"unknown"}
    banks = accounts.select(pl.col("account_id").str.split(":").list.first() == pl.col("bank_id"))
    assert banks.to_series().all()
    suspicious = set(tx.filter("is_suspicious")["src_account"]) | set(
        tx.filter("is_suspicious")["dst_account"]
    )
    assert set(accounts.filter("is_suspicious")["account_id"]) == suspicious
    hub = accounts.filter(pl.col("account_id") == "021174:800737690").row(0, named=True)
    assert hub["typology"] == "fan_out"


def test_unlabelled_amlworld_has_no_label_columns(tmp_path):
    path = tmp_path / "U_Trans.csv"
    header = AMLWORLD_HEADER.removesuffix(",Is Laundering")
    path.write_text(header + "\n" + AMLWORLD_ROW.format(amount=5).removesuffix(",0") + "\n")
    tx, accounts = frames(read(path))
    assert tx.height == 1
    for frame in (tx, accounts):
        assert not set(schema.label_columns("transactions")) & set(frame.columns)


def test_base_currency_converts_amount_base():
    tx, _ = frames(read(AMLWORLD, base_currency="EUR"))
    row = by_row(tx, 1)  # 3697.34 US dollars
    assert row["amount_base"] == pytest.approx(3697.34 * units_per_usd()["EUR"])
    assert row["amount"] == 3697.34


def test_paysim_steps_are_hours_after_start():
    tx, _ = frames(read(PAYSIM))
    assert by_row(tx, 1)["ts"] == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert by_row(tx, 8)["ts"] == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=743)
    start = datetime(2020, 6, 1, 12)
    moved, _ = frames(read(PAYSIM, start=start))
    assert by_row(moved, 5)["ts"] == datetime(2020, 6, 1, 14, tzinfo=UTC)


def test_paysim_maps_types_labels_and_merchants():
    tx, accounts = frames(read(PAYSIM))
    channels = dict(zip(tx["source_row"], tx["channel"], strict=True))
    assert [channels[r] for r in (1, 3, 4, 5, 6)] == [
        "mobile_money",
        "p2p",
        "cash_withdrawal",
        "mobile_money",
        "cash_deposit",
    ]
    assert set(tx["currency"]) == {"USD"}
    assert by_row(tx, 7)["amount"] == 1.0e7
    fraud = tx.filter("is_suspicious")
    assert sorted(fraud["source_row"]) == [3, 4, 7, 8]
    assert set(fraud["typology"]) == {"fraud"}
    assert tx.filter(~pl.col("is_suspicious"))["typology"].null_count() == 4
    kinds = dict(zip(accounts["account_id"], accounts["kind"], strict=True))
    assert kinds["M1979787155"] == "business"
    assert kinds["C1231006815"] == "individual"
    assert accounts.filter(pl.col("account_id") == "C553264065")["is_suspicious"].item()


def test_samld_maps_time_currency_location_and_typology():
    tx, accounts = frames(read(SAMLD))
    first = by_row(tx, 1)
    assert first["ts"] == datetime(2022, 10, 7, 10, 35, 19, tzinfo=UTC)
    assert (first["currency"], first["channel"]) == ("GBP", "cash_deposit")
    assert (first["src_account"], first["dst_account"]) == ("8724731955", "2769355426")
    cross = by_row(tx, 2)
    assert (cross["src_country"], cross["dst_country"], cross["channel"]) == ("GB", "AE", "wire")
    assert by_row(tx, 4)["currency"] == "INR"
    assert by_row(tx, 6)["amount"] == 12000.0
    assert by_row(tx, 7)["currency"] == "MAD"
    typologies = dict(zip(tx["source_row"], tx["typology"], strict=True))
    assert [typologies[r] for r in (1, 2, 3)] == [None, None, None]  # normal behaviour
    assert typologies[4] == "smurfing"
    assert typologies[6] == "stacked_bipartite"
    assert typologies[7] == "layered_fan_out"
    countries = dict(zip(accounts["account_id"], accounts["country"], strict=True))
    assert countries["1111111111"] == "ES"
    assert countries["2222222222"] in ("NG", "MA")


def test_amlsim_folder_reads_labels_from_alerts():
    result = read(AMLSIM)
    assert result.format == "amlsim"
    assert {p.name for p in result.sources} == {
        "transactions.csv",
        "accounts.csv",
        "alert_transactions.csv",
        "alert_accounts.csv",
    }
    tx, _ = frames(result)
    assert by_row(tx, 1)["ts"] == datetime(2017, 1, 1, 10, tzinfo=UTC)
    assert by_row(tx, 4)["channel"] == "cash_deposit"
    assert by_row(tx, 7)["channel"] == "cheque"
    sar = tx.filter("is_suspicious").sort("source_row")
    assert sar["txn_id"].to_list() == ["2", "3", "5", "6"]
    assert sar["typology"].to_list() == ["cycle", "cycle", "fan_out", "fan_out"]
    assert sar["scheme_id"].to_list() == ["10", "10", "11", "11"]
    false_alert = by_row(tx, 7)  # alert 12 is not a SAR
    assert (false_alert["is_suspicious"], false_alert["typology"]) == (False, None)


def test_amlsim_accounts_table_is_mapped():
    _, accounts = frames(read(AMLSIM))
    assert accounts.height == 6
    acme = accounts.filter(pl.col("account_id") == "3001").row(0, named=True)
    assert (acme["kind"], acme["party_id"], acme["bank_id"]) == ("business", "C_3001", "bank_b")
    mary = accounts.filter(pl.col("account_id") == "1001").row(0, named=True)
    assert mary["birth_date"] == date(1980, 5, 17)
    assert mary["name"] == "Mary Jones"
    assert mary["opened_at"] == datetime(2017, 1, 1, tzinfo=UTC)
    assert not mary["is_suspicious"]
    labels = dict(zip(accounts["account_id"], accounts["typology"], strict=True))
    assert labels["4001"] == "fan_out" and labels["2001"] == "cycle"


def test_amlsim_transactions_file_alone_derives_accounts(tmp_path):
    shutil.copy(AMLSIM / "transactions.csv", tmp_path / "transactions.csv")
    result = read(tmp_path / "transactions.csv")
    assert result.format == "amlsim"
    tx, accounts = frames(result)
    assert set(accounts["account_id"]) == set(tx["src_account"]) | set(tx["dst_account"])
    assert set(tx.filter("is_suspicious")["typology"]) == {"laundering"}


def test_canonical_csv_folder_round_trips_through_parquet(tmp_path):
    tx, accounts = frames(read(CANONICAL))
    assert by_row(tx, 2)["ts"] == datetime(2026, 1, 5, 23, 40, 0, 250000, tzinfo=UTC)
    assert by_row(tx, 2)["memo"] == "hotel, 2 nights"
    assert by_row(tx, 4)["ts"] == datetime(2026, 1, 7, tzinfo=UTC)
    assert by_row(tx, 2)["mcc"] == "7011"
    kinds = dict(zip(accounts["account_id"], accounts["kind"], strict=True))
    assert kinds["A3"] == "unknown"  # empty in the file
    assert accounts.filter(pl.col("account_id") == "A1")["bank_id"].item() == "0012"
    tx.write_parquet(tmp_path / "transactions.parquet")
    accounts.write_parquet(tmp_path / "accounts.parquet")
    again = read(tmp_path)
    assert again.format == "canonical"
    assert_frame_equal(again.transactions.collect(), tx)
    assert_frame_equal(again.accounts.collect(), accounts)


def test_canonical_parquet_of_other_types_is_converted(tmp_path):
    pl.DataFrame(
        {
            "txn_id": [1, 2],
            "ts": [datetime(2022, 1, 1, 3), datetime(2022, 1, 2)],  # naive: taken as UTC
            "src_account": ["a", "b"],
            "dst_account": ["b", "a"],
            "amount": [10, 20],  # integers
            "currency": ["EUR", "usd"],
            "channel": ["wire", "card"],
            "is_suspicious": [1, 0],
        }
    ).write_parquet(tmp_path / "transactions.parquet")
    tx, accounts = frames(read(tmp_path))
    assert tx["txn_id"].to_list() == ["1", "2"]
    assert tx["ts"][0] == datetime(2022, 1, 1, 3, tzinfo=UTC)
    assert tx["currency"].to_list() == ["EUR", "USD"]
    assert tx["amount_base"][0] == pytest.approx(usd(10, "EUR"))
    assert tx["is_suspicious"].to_list() == [True, False]
    assert set(accounts["account_id"]) == {"a", "b"}
