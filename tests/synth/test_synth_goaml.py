"""`flows87 synth --format goaml`: the synthetic population as the goAML reports an FIU receives.

Reports validate against the goAML 5.0.1 XSD (../shared/goaml, skipped when absent), the truth
names every party record the reports contain (enumerated here from the XML, independently of the
writer), the same seed gives the same bytes, and the noise levels order the share of persons
written more than one way."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from lxml import etree

from flows87.cli import cli
from flows87.investigate.export.goaml import validate_report
from flows87.research.synth import SynthData, generate
from flows87.research.synth.goaml import write_goaml
from flows87.research.synth.goaml_names import ALTERNATIVES, NOISE, typo

XSD = Path(__file__).resolve().parents[3] / "shared" / "goaml" / "goAMLSchema-5.0.1.xsd"
needs_xsd = pytest.mark.skipif(
    not XSD.exists() and os.environ.get("CI") is None, reason=f"goAML schema not at {XSD}"
)
SEED = 5


@pytest.fixture(scope="module")
def population() -> SynthData:
    return generate(1_000, 14, seed=SEED, suspicious_share=0.02)


@pytest.fixture(scope="module")
def written(population: SynthData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("goaml")
    write_goaml(population, out, seed=SEED, noise="default")
    return out


def _reports(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*/*.xml") if p.parent.name != "truth")


def _records(path: Path, file: str) -> dict[str, str]:
    """The party records of one report by the shared contract (`file`: its path in the output
    folder, as the goAML reader names it): record_id -> person/entity."""
    root = etree.parse(str(path)).getroot()
    found: dict[str, str] = {}

    def entity(el: etree._Element, key: str) -> None:
        found[key] = "entity"
        for n, _ in enumerate(el.findall("director_id"), start=1):
            found[f"{key}-director-{n}"] = "person"

    for tx in root.iter("transaction"):
        base = f"{file}#{tx.findtext('transactionnumber')}"
        signatory = 0
        for side in ("from", "to"):
            el = tx.find(f"t_{side}_my_client")
            el = tx.find(f"t_{side}") if el is None else el
            assert el is not None, f"{base}: no {side} side"
            if el.find(f"{side}_person") is not None:
                found[f"{base}#{side}"] = "person"
            if el.find(f"{side}_entity") is not None:
                entity(el.find(f"{side}_entity"), f"{base}#{side}")
            account = el.find(f"{side}_account")
            if account is None:
                continue
            if account.find("t_entity") is not None:
                entity(account.find("t_entity"), f"{base}#{side}")
            for _ in account.findall("signatory"):
                signatory += 1
                found[f"{base}#signatory-{signatory}"] = "person"
    for n, party in enumerate(root.iter("report_party"), start=1):
        kind = "entity" if party.find("entity_my_client") is not None else "person"
        found[f"{file}#activity#{n}"] = kind
    return found


@needs_xsd
def test_every_report_validates_against_the_xsd(written: Path) -> None:
    reports = _reports(written)
    assert len(reports) > 20
    codes = {etree.parse(str(p)).findtext("report_code") for p in reports}
    assert codes == {"STR", "CTR", "SAR"}
    for path in reports:
        assert validate_report(path.read_bytes(), XSD) == [], path


def test_the_truth_covers_every_party_record(written: Path) -> None:
    truth = pl.read_parquet(written / "truth" / "parties.parquet")
    assert truth["record_id"].is_unique().all()
    assert truth["true_party_id"].null_count() == 0
    expected: dict[str, str] = {}
    for path in _reports(written):
        expected.update(_records(path, path.relative_to(written).as_posix()))
    assert set(truth["record_id"]) == set(expected)
    kinds = dict(zip(truth["record_id"], truth["kind"], strict=True))
    assert kinds == expected
    # the file part of a record id is the report's path in the output folder
    assert (truth["record_id"].str.split("#").list.first() == truth["source_file"]).all()


def test_only_reported_transactions_with_labels_kept_apart(
    written: Path, population: SynthData
) -> None:
    numbers: dict[str, set[str]] = {}
    for path in _reports(written):
        text = path.read_text()
        for label in ("is_suspicious", "transaction_is_suspicious", "typology", "scheme"):
            assert label not in text, f"{path.name} leaks a label"
        for typ in population.transactions["typology"].drop_nulls().unique():
            assert typ not in text
        root = etree.parse(str(path)).getroot()
        for n in root.iter("transactionnumber"):
            numbers.setdefault(n.text or "", set()).add(path.parent.name)
    truth = pl.read_parquet(written / "truth" / "transactions.parquet")
    assert set(truth["transactionnumber"]) == set(numbers)
    assert truth.height < population.transactions.height / 5  # only what banks reported
    sus = truth.filter("is_suspicious")
    assert sus.height > 0 and sus["scheme_id"].null_count() == 0
    assert truth.filter(~pl.col("is_suspicious")).height > 0  # CTRs and false positives
    # a transfer between clients of two banks reported by both, each with its own view
    both = [t for t, banks in numbers.items() if len(banks) > 1]
    assert both
    views = set()
    for path in _reports(written):
        root = etree.parse(str(path)).getroot()
        for tx in root.iter("transaction"):
            if tx.findtext("transactionnumber") == both[0]:
                views.add(tuple(child.tag for child in tx if child.tag.startswith("t_")))
    assert len(views) == 2 and all(any("my_client" in t for t in v) for v in views)


def test_same_seed_same_bytes(population: SynthData, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_goaml(population, a, seed=SEED, zip_banks=True)
    write_goaml(generate(1_000, 14, seed=SEED, suspicious_share=0.02), b, seed=SEED, zip_banks=True)
    write_goaml(population, c, seed=SEED + 1, zip_banks=True)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(f.suffix == ".zip" for f in files) and len(files) > 6
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "truth" / "parties.parquet").read_bytes() != (
        c / "truth" / "parties.parquet"
    ).read_bytes()


def test_noise_levels_differ_as_stated(population: SynthData, tmp_path: Path) -> None:
    shares = {}
    for level in NOISE:
        out = tmp_path / level
        made = write_goaml(population, out, seed=SEED, noise=level)
        parties = pl.read_parquet(out / "truth" / "parties.parquet")
        variants = (
            parties.filter(pl.col("kind") == "person")
            .group_by("true_party_id")
            .agg(pl.col("written_name").str.to_lowercase().n_unique().alias("spellings"))
        )
        shares[level] = (variants["spellings"] > 1).mean()
        assert shares[level] == pytest.approx(made.spelling["share_all"])
        if level == "high":
            names = set(parties["written_name"])
            assert any(w in ALTERNATIVES for n in names for w in n.split())
            firsts = {n.split()[0] for n in names}
            assert any(len(f) == 2 and f.endswith(".") for f in firsts)  # initials
            entities = set(parties.filter(pl.col("kind") == "entity")["written_name"])
            assert any(n.endswith(("Limited", "Ltd", "L.L.C.")) for n in entities)
    assert shares["none"] == 0
    assert shares["none"] < shares["low"] < shares["default"] < shares["high"]


def test_typo_changes_a_word_but_keeps_its_first_letter() -> None:
    import random

    rng = random.Random(1)
    for word in ("Mohammed", "Ivanova", "Lee", "Li"):
        for _ in range(20):
            t = typo(word, rng)
            assert t != word and t[0] == word[0]


def test_cli_writes_zipped_banks(tmp_path: Path) -> None:
    out = tmp_path / "fiu"
    args = ["synth", "--format", "goaml", "--accounts", "900", "--days", "10", "--seed", "2"]
    result = CliRunner().invoke(
        cli, [*args, "--banks", "4", "--zip", "--noise", "low", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "goAML reports" in result.output
    zips = sorted(out.glob("*.zip"))
    assert [z.stem for z in zips] == ["0101", "0102", "0103", "0104"]
    reports = pl.read_parquet(out / "truth" / "reports.parquet")
    inside = {f"{z.name}/{n}" for z in zips for n in zipfile.ZipFile(z).namelist()}
    assert inside == set(reports["file"])
    canonical = pl.read_parquet(out / "truth" / "canonical" / "accounts.parquet")
    assert set(canonical.filter(pl.col("bank_id") < "0900")["bank_id"]) <= {
        "0101",
        "0102",
        "0103",
        "0104",
        *canonical["bank_id"].filter(canonical["account_id"].str.starts_with("CASH:")),
    }
    bad = CliRunner().invoke(cli, [*args, "--shape", "chain", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0


@needs_xsd
def test_the_goaml_reader_reads_the_reports_back(written: Path) -> None:
    """Every party record the reader makes has its truth, and each reported transaction is read
    once although both banks of a transfer may report it (an entity's directors included)."""
    reader = pytest.importorskip("flows87.pipeline.ingest.goaml")
    from flows87.pipeline.ingest.common import Options

    read = reader.read(written, Options(), xsd=XSD)
    assert read.rejects.height == 0
    truth = pl.read_parquet(written / "truth" / "parties.parquet")
    seen = set(read.parties["record_id"])
    assert seen == set(truth["record_id"])
    txns = pl.read_parquet(written / "truth" / "transactions.parquet")
    got = (
        read.transactions.collect()
        if isinstance(read.transactions, pl.LazyFrame)
        else read.transactions
    )
    assert sorted(got["txn_id"]) == sorted(txns["transactionnumber"])


def test_split_schemes_give_key_persons_accounts_at_several_banks(
    written: Path, population: SynthData
) -> None:
    """The key persons spread over banks hold accounts at two or three banks, each account
    with a piece of the scheme (fewer of its transactions than the person's), and new accounts
    are the person's own (same party, name and birth date) with the scheme's label."""
    split = pl.read_parquet(written / "truth" / "split.parquet")
    assert split.height > 0 and split["added"].any()
    accounts = pl.read_parquet(written / "truth" / "canonical" / "accounts.parquet")
    txns = pl.read_parquet(written / "truth" / "canonical" / "transactions.parquet")
    by_id = {r["account_id"]: r for r in accounts.iter_rows(named=True)}
    for (scheme,), mine in split.group_by(["scheme_id"], maintain_order=True):
        assert 2 <= mine["bank_id"].n_unique() <= 3, scheme
        assert mine["party_id"].n_unique() == 1
        total = txns.filter(
            (pl.col("scheme_id") == scheme)
            & (pl.col("src_account").is_in(mine["account_id"].implode())
               | pl.col("dst_account").is_in(mine["account_id"].implode()))
        ).height  # fmt: skip
        first = by_id[mine.filter(~pl.col("added"))["account_id"][0]]
        for row in mine.iter_rows(named=True):
            acc = by_id[row["account_id"]]
            assert acc["bank_id"] == row["bank_id"] and acc["party_id"] == row["party_id"]
            assert acc["is_suspicious"] and acc["scheme_id"] == scheme
            assert acc["name"] == first["name"] and acc["birth_date"] == first["birth_date"]
            assert 1 <= row["transactions"] < total
            used = txns.filter(
                (pl.col("src_account") == row["account_id"])
                | (pl.col("dst_account") == row["account_id"])
            )
            assert used.filter(pl.col("scheme_id") == scheme).height == row["transactions"]
            if row["added"]:  # a new account moves only the scheme's money, after it opened
                assert used["scheme_id"].unique().to_list() == [scheme]
                assert acc["opened_at"] < used["ts"].min()
    # the new accounts reach the FIU in their own bank's reports
    reports = pl.read_parquet(written / "truth" / "reports.parquet")
    for row in split.filter("added").iter_rows(named=True):
        number = row["account_id"].split("-", 1)[1]
        filed = reports.filter(pl.col("bank_id") == row["bank_id"])["file"].to_list()
        assert any(f"<account>{number}</account>" in (written / f).read_text() for f in filed)


def test_the_split_keeps_the_truth_exact(written: Path, population: SynthData) -> None:
    """Transactions keep their ids, amounts, times and labels (only the key person's account
    on one end changes, to another of theirs); no labelled account is left without a
    transaction of its scheme; without a split the population is written as generated."""
    from flows87.research.synth.goaml_split import split_schemes

    after = pl.read_parquet(written / "truth" / "canonical" / "transactions.parquet")
    before = population.transactions
    assert after["txn_id"].to_list() == before["txn_id"].to_list()
    keep = ["ts", "amount_base", "channel", "location_id", "is_suspicious", "typology", "scheme_id"]
    assert after.select(keep).equals(before.select(keep))
    accounts = pl.read_parquet(written / "truth" / "canonical" / "accounts.parquet")
    party = dict(zip(accounts["account_id"], accounts["party_id"], strict=True))
    changed = 0
    for end in ("src_account", "dst_account"):
        old, new = before[end].to_list(), after[end].to_list()
        for a, b, sus in zip(old, new, before["is_suspicious"], strict=True):
            if a != b:
                changed += 1
                assert sus and party[a] == party[b]
    assert changed > 0
    split = pl.read_parquet(written / "truth" / "split.parquet")
    assert accounts.height == population.accounts.height + int(split["added"].sum())
    ends = pl.concat(
        [after.select("scheme_id", account="src_account"),
         after.select("scheme_id", account="dst_account")]
    ).drop_nulls("scheme_id").unique()  # fmt: skip
    labelled = accounts.filter("is_suspicious").select("scheme_id", account="account_id")
    orphans = labelled.join(ends, on=["account", "scheme_id"], how="anti")
    was = population.accounts.filter("is_suspicious").select("scheme_id", account="account_id")
    was_orphans = was.join(
        pl.concat(
            [before.select("scheme_id", account="src_account"),
             before.select("scheme_id", account="dst_account")]
        ).drop_nulls("scheme_id").unique(),
        on=["account", "scheme_id"],
        how="anti",
    )  # fmt: skip
    assert orphans.sort("account").equals(was_orphans.sort("account"))
    none = split_schemes(population, 0.0, SEED)
    assert none.data is population and none.accounts.is_empty()


def test_every_key_person_can_be_split(population: SynthData) -> None:
    from flows87.research.synth.goaml_split import SPLIT_TYPOLOGIES, key_persons, split_schemes

    keys = key_persons(population)
    assert set(keys["typology"]) == set(SPLIT_TYPOLOGIES)
    full = split_schemes(population, 1.0, SEED)
    assert full.persons >= keys.height - 2  # a few have too few payers to spread
    banks = full.accounts.group_by("scheme_id").agg(pl.col("bank_id").n_unique())
    assert (banks["bank_id"] >= 2).all()
    again = split_schemes(population, 1.0, SEED)
    assert again.accounts.equals(full.accounts)
    assert again.data.accounts.equals(full.data.accounts)
    assert not split_schemes(population, 1.0, SEED + 1).accounts.equals(full.accounts)


def test_cli_split_schemes_option(tmp_path: Path) -> None:
    args = ["synth", "--format", "goaml", "--accounts", "900", "--days", "10", "--seed", "2"]
    for share, spread in (("0", False), ("1", True)):
        out = tmp_path / share
        result = CliRunner().invoke(
            cli, [*args, "--split-schemes", share, "--out", str(out), "--quiet"]
        )
        assert result.exit_code == 0, result.output
        split = pl.read_parquet(out / "truth" / "split.parquet")
        assert (split.height > 0) is spread
        said = " ".join(result.output.split())  # the console wraps long lines
        assert f"{split['scheme_id'].n_unique()} key persons spread over banks" in said
    bad = CliRunner().invoke(cli, [*args, "--split-schemes", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0
