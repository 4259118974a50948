"""Entity resolution on a small labelled set: hand-made hard cases among generated records."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from flows87.pipeline.job import Job
from flows87.pipeline.resolve import synthetic
from flows87.pipeline.resolve.prepare import prepare
from flows87.pipeline.resolve.resolve import Resolution, resolve_parties
from flows87.pipeline.resolve.settings import load_settings
from flows87.pipeline.stages.config import RunConfig
from flows87.pipeline.stages.resolve import resolve as resolve_stage

D = date
CASES = [
    # record_id, kind, name, birth_date, id_number, phone, email, address, bank
    ("typo-1", "person", "Jonathan Whitaker", D(1975, 3, 14), "GB1234567", "+44 7700 900123",
     None, "12 Mill Lane Riverton", "bankA"),
    ("typo-2", "person", "Jonathon Whittaker", D(1975, 3, 14), None, "07700 900123",
     None, "12 Mill Lane Riverton", "bankB"),
    ("namesake-1", "person", "Maria Gonzalez", D(1980, 5, 1), None, "+34 600 111 222",
     "maria.g@correo.example", "Calle Mayor 5 Madrid", "bankA"),
    ("namesake-2", "person", "Maria Gonzalez", D(1962, 11, 23), None, "+34 611 333 444",
     None, "Avenida del Sol 88 Sevilla", "bankC"),
    ("swap-1", "person", "Wei Zhang", D(1990, 8, 8), None, "+86 139 0000 1111",
     None, "8 Harbour Road Eastbury", "bankA"),
    ("swap-2", "person", "Zhang Wei", D(1990, 8, 8), None, None,
     None, "8 Harbour Road Eastbury", "bankD"),
    ("translit-1", "person", "Aleksandr Petrov", D(1971, 1, 30), None, "+7 916 555 0101",
     None, None, "bankB"),
    ("translit-2", "person", "Александр Петров", D(1971, 1, 30), None, "8 916 555 0101",
     None, None, "bankE"),
    ("initial-1", "person", "Kelechi Okonkwo", D(1985, 6, 2), None, None,
     "k.okonkwo@mail.example", "4 Station Street Northam", "bankA"),
    ("initial-2", "person", "K. Okonkwo", D(1985, 6, 2), None, "+234 803 000 0000",
     "k.okonkwo@mail.example", None, "bankC"),
    ("ltd-1", "entity", "Northwind Trading Ltd", None, "HRB 99231", "+49 30 1234567",
     None, "Friedrichstrasse 10 Berlin", "bankA"),
    ("ltd-2", "entity", "NORTHWIND TRADING LIMITED", None, "HRB99231", None,
     "office@northwind.example", "Friedrichstr. 10 Berlin", "bankB"),
    ("other-entity", "entity", "Northwind Logistics Ltd", None, "HRB 51117", "+49 40 7654321",
     None, "Hafenweg 2 Hamburg", "bankC"),
]  # fmt: skip
COLUMNS = ["record_id", "kind", "name", "birth_date", "id_number", "phone", "email", "address",
           "bank_id"]  # fmt: skip


def _entities(n: int) -> pl.DataFrame:
    """Background companies, each written once or twice, so the entity model has data."""
    words = ["Alder", "Birch", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris"]
    kinds = ["Trading", "Logistics", "Consulting", "Imports", "Foods", "Textiles", "Metals"]
    rows = []
    for i in range(n):
        name = f"{words[i % 9]} {kinds[(i // 9) % 7]} {i // 63} Ltd"
        for k in range(1 + i % 2):
            rows.append((f"e{i}-{k}", "entity", name if k == 0 else name.upper(), None,
                         f"REG{i:05d}", f"+44 20 {i:07d}", None, f"{i} Dock Road", f"bank{k}"))  # fmt: skip
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


def labelled_records() -> pl.DataFrame:
    background = synthetic.people(3000, "default", seed=5).select(COLUMNS)
    cases = pl.DataFrame(CASES, schema=COLUMNS, orient="row")
    return pl.concat([background, _entities(300), cases], how="vertical_relaxed")


@pytest.fixture(scope="module")
def resolution() -> Resolution:
    return resolve_parties(labelled_records(), load_settings())


def party(res: Resolution, record_id: str) -> str:
    return res.clusters.filter(pl.col("record_id") == record_id)["party_id"].item()


def pair(res: Resolution, a: str, b: str) -> dict:
    rows = res.pairs.filter(
        pl.col("record_id_l").is_in([a, b]) & pl.col("record_id_r").is_in([a, b])
    )
    assert rows.height == 1, f"{a} and {b} were not scored"
    return rows.row(0, named=True)


@pytest.mark.parametrize(
    "a, b",
    [
        ("typo-1", "typo-2"),
        ("swap-1", "swap-2"),
        ("translit-1", "translit-2"),
        ("initial-1", "initial-2"),
        ("ltd-1", "ltd-2"),
    ],  # fmt: skip
)
def test_same_party_written_differently_is_one_party(resolution: Resolution, a, b) -> None:
    assert party(resolution, a) == party(resolution, b), pair(resolution, a, b)


def test_namesake_with_another_birth_date_is_kept_apart(resolution: Resolution) -> None:
    assert party(resolution, "namesake-1") != party(resolution, "namesake-2")


def test_another_company_of_a_similar_name_is_kept_apart(resolution: Resolution) -> None:
    assert party(resolution, "ltd-1") != party(resolution, "other-entity")


def test_explanation_names_agreeing_and_disagreeing_fields(resolution: Resolution) -> None:
    typo = pair(resolution, "typo-1", "typo-2")["explanation"]
    assert typo.startswith("same phone") or "same phone" in typo
    assert "same birth date" in typo and "same address" in typo
    similar = typo.split("name ")[1].split(" similar")[0]
    assert 0.8 <= float(similar) < 1
    initial = pair(resolution, "initial-1", "initial-2")["explanation"]
    assert "same e-mail" in initial
    swapped = pair(resolution, "swap-1", "swap-2")["explanation"]
    assert "given and family names swapped" in swapped
    ltd = pair(resolution, "ltd-1", "ltd-2")
    assert "same name" in ltd["explanation"] and "same identity number" in ltd["explanation"]
    assert ltd["w_name"] > 0 and ltd["match_probability"] >= resolution.settings.threshold
    # a disagreeing field comes after the agreeing ones, named as different
    with_diff = resolution.links.filter(pl.col("w_phone") < 0)["explanation"][0]
    assert with_diff.index("different phone") > with_diff.index("same")


def test_accuracy_on_the_generated_background(resolution: Resolution) -> None:
    truth = synthetic.people(3000, "default", seed=5)
    scores = synthetic.scores(resolution.clusters, truth)
    assert scores["pair_f1"] >= 0.95 and scores["cluster_f1"] >= 0.95, scores


def test_review_pairs_lie_between_the_thresholds(resolution: Resolution) -> None:
    s = resolution.settings
    review = resolution.review["match_probability"]
    assert review.len() > 0 and review.min() >= s.review_from and review.max() < s.threshold


def test_same_records_in_another_order_give_the_same_party_ids(resolution: Resolution) -> None:
    shuffled = labelled_records().sample(fraction=1.0, shuffle=True, seed=11)
    again = resolve_parties(shuffled, load_settings())
    assert again.clusters.sort("record_id").equals(resolution.clusters.sort("record_id"))


def test_party_id_is_a_hash_of_the_smallest_record(resolution: Resolution) -> None:
    from flows87.pipeline.resolve.resolve import party_id

    assert party(resolution, "typo-2") == party_id("typo-1")
    sizes = resolution.clusters.group_by("party_id").agg(pl.col("record_id").min(), pl.len())
    assert all(party_id(r) == p for p, r, _ in sizes.iter_rows())


def test_legal_forms_and_scripts_are_normalised() -> None:
    frame = pl.DataFrame(CASES, schema=COLUMNS, orient="row")
    p = prepare(frame, load_settings()).select("record_id", "name_norm", "phone_norm")
    norm = dict(p.select("record_id", "name_norm").iter_rows())
    assert norm["ltd-1"] == norm["ltd-2"] == "northwind trading"
    assert norm["translit-2"] == "aleksandr petrov"
    phones = dict(p.select("record_id", "phone_norm").iter_rows())
    assert phones["typo-1"] == phones["typo-2"]


def always_resolve(tmp_path: Path) -> RunConfig:
    """A rules folder whose resolution.yaml says `when: always` (resolve accounts' holders)."""
    from flows87.pipeline.resolve.settings import DEFAULT_SETTINGS

    folder = tmp_path / "rules" / "settings"
    folder.mkdir(parents=True)
    text = DEFAULT_SETTINGS.read_text().replace("when: reports", "when: always")
    (folder / "resolution.yaml").write_text(text)
    return RunConfig(rules_dir=str(tmp_path / "rules"))


def test_stage_resolves_accounts_and_keeps_the_source_ids(tmp_path) -> None:
    people = synthetic.people(400, "default", seed=3)
    accounts = people.select(
        "account_id",
        ("C-" + pl.col("record_id")).alias("party_id"),  # the bank's customer number
        "bank_id",
        pl.lit("individual").alias("kind"),
        "name", "birth_date", "phone", "email", "address",
    )  # fmt: skip
    accounts.write_parquet(tmp_path / "accounts.parquet")
    # by default only a reader's party records are resolved: an accounts table is left alone
    assert resolve_stage(Job.local(tmp_path)) == {"records": 0}
    assert "party_id_source" not in pl.read_parquet(tmp_path / "accounts.parquet").columns
    config = always_resolve(tmp_path)
    counts = resolve_stage(Job.local(tmp_path, config))
    out = pl.read_parquet(tmp_path / "accounts.parquet")
    assert out["party_id_source"].to_list() == accounts["party_id"].to_list()
    truth = people.select("account_id", "true_party_id")
    joined = out.join(truth, on="account_id")
    scores = synthetic.scores(
        joined.select(pl.col("account_id").alias("record_id"), "party_id"),
        joined.select(pl.col("account_id").alias("record_id"), "true_party_id"),
    )
    assert scores["pair_f1"] >= 0.95, scores
    assert counts["accounts_merged"] > 0
    folder = tmp_path / "resolution"
    for name in ("model.json", "clusters.parquet", "links.parquet", "pairs_review.parquet"):
        assert (folder / name).exists()
    model = json.loads((folder / "model.json").read_text())
    levels = model["models"]["person"]["comparisons"][0]["comparison_levels"]
    assert all("u_probability" in lv for lv in levels if not lv.get("is_null_level"))
    record = json.loads((tmp_path / "stages" / "resolve.json").read_text())
    assert record["status"] == "succeeded" and record["params"]["records_from"] == "accounts"
    # run twice: the source ids stay the bank's, the party ids stay the same
    resolve_stage(Job.local(tmp_path, config))
    twice = pl.read_parquet(tmp_path / "accounts.parquet")
    assert twice.equals(out)


def test_too_few_records_to_train_still_resolve() -> None:
    """Two records: no pair to estimate the prior from (it came out 0 and predict failed)."""
    res = resolve_parties(pl.DataFrame(CASES[:2], schema=COLUMNS, orient="row"), load_settings())
    assert res.clusters.height == 2
    assert any("prior" in p for p in res.models["person"]["training_problems"])


def test_an_account_takes_its_holders_party() -> None:
    from flows87.pipeline.stages.resolve import account_parties

    clusters = pl.DataFrame(
        {
            "record_id": ["r.xml#1#from", "r.xml#1#signatory-1", "s.xml#2#to", "s.xml#3#from"],
            "account_id": ["A1", "A1", None, "A2"],
            "txn_account": ["A1", "A1", "WALKIN-9", "A2"],
            "holder": [False, True, False, False],
            "party_id": ["p-entity", "p-signatory", "p-walkin", "p-2"],
        }
    )
    got = dict(account_parties(clusters).iter_rows())
    assert got == {"A1": "p-signatory", "WALKIN-9": "p-walkin", "A2": "p-2"}
    without = dict(account_parties(clusters.drop("holder", "txn_account")).iter_rows())
    assert without == {"A1": "p-entity", "A2": "p-2"}


ACCOUNT_CASES = [
    # record_id, kind, name, birth_date, id_number, phone, address, bank, account, holder
    ("acct-client", "person", "Jonathan Whitaker", D(1975, 3, 14), "GB1234567",
     "+44 7700 900123", "12 Mill Lane Riverton", "0101", "0101:77", True),
    ("acct-payee", "person", "J. Whitakre", None, None, None, None, "0102", "0101:77", True),
    ("acct-namesake", "person", "J. Whitakre", None, None, None, None, "0103", "0103:5", True),
    ("co-holder", "entity", "Harbor Foods Ltd", None, "C7781234", "+44 20 7946 0018",
     "1 Dock Road Eastbury", "0101", "0101:88", True),
    ("co-signatory-1", "person", "Ana Silva", D(1980, 2, 2), "123-45-6789", None, None,
     "0101", "0101:88", False),
    ("co-signatory-2", "person", "Wei Chen", D(1969, 9, 9), "987-65-4321", None, None,
     "0101", "0101:88", False),
]  # fmt: skip
ACCOUNT_COLUMNS = ["record_id", "kind", "name", "birth_date", "id_number", "phone", "address",
                   "bank_id", "account_id", "holder"]  # fmt: skip


@pytest.fixture(scope="module")
def by_account() -> Resolution:
    background = synthetic.people(600, "default", seed=7).select(COLUMNS)
    cases = pl.DataFrame(ACCOUNT_CASES, schema=ACCOUNT_COLUMNS, orient="row")
    return resolve_parties(pl.concat([background, cases], how="diagonal_relaxed"), load_settings())


def test_a_name_only_counterparty_is_its_accounts_holder(by_account: Resolution) -> None:
    """A payer's bank knows the payee by a typed name and the account only: the account says
    who it is (the name alone could be anyone's)."""
    assert party(by_account, "acct-client") == party(by_account, "acct-payee")
    assert party(by_account, "acct-namesake") != party(by_account, "acct-payee")
    link = pair(by_account, "acct-client", "acct-payee")
    assert link["match_probability"] == 1.0 and link["linked_by"] == "account"
    assert link["explanation"].startswith("holds the same account 0101:77")
    assert by_account.review.filter(pl.col("linked_by") == "account").is_empty()


def test_a_company_accounts_signatories_are_other_persons(by_account: Resolution) -> None:
    people = {party(by_account, r) for r in ("co-signatory-1", "co-signatory-2")}
    assert len(people) == 2 and party(by_account, "co-holder") not in people


def test_the_holder_is_found_from_record_ids_without_the_readers_flag() -> None:
    from flows87.pipeline.resolve.accounts import account_links

    records = pl.DataFrame(
        {
            "record_id": [
                "r.xml#1#from", "r.xml#1#from-director-1", "r.xml#1#signatory-1",
                "r.xml#1#signatory-2", "r.xml#1#signatory-3", "s.xml#9#signatory-1",
                "s.xml#activity#2", "t.xml#4#to",
            ],
            "kind": ["entity", "person", "person", "person", "person", "person", "person",
                     "entity"],
            "account_id": ["A", "A", "A", "B", "B", "B", "B", "A"],
        }
    )  # fmt: skip
    links = account_links(records).select("record_id_l", "record_id_r").rows()
    assert sorted(links) == [
        ("r.xml#1#from", "t.xml#4#to"),
        ("r.xml#1#signatory-2", "s.xml#9#signatory-1"),
        ("s.xml#9#signatory-1", "s.xml#activity#2"),
    ]


@pytest.fixture(scope="module")
def fiu_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The FIU's goAML reports from four banks (`flows87 synth --format goaml --accounts 5000
    --days 30 --banks 4`, default noise), read back: the reader's party records and the
    writer's truth."""
    from flows87.pipeline.ingest import goaml
    from flows87.pipeline.ingest.common import Options
    from flows87.research.synth import generate
    from flows87.research.synth.goaml import write_goaml
    from flows87.research.synth.goaml_select import rebank

    out = tmp_path_factory.mktemp("fiu")
    write_goaml(rebank(generate(5_000, 30, seed=0), 4, 0), out, seed=0, noise="default")
    truth = pl.read_parquet(out / "truth" / "parties.parquet")
    return goaml.read(out, Options()).parties, truth


def test_accuracy_on_the_fius_goaml_reports(fiu_reports) -> None:
    """Name-only counterparties, directors and several banks' spellings (pair F1 was 0.82,
    recall 0.69, before the holders of one account were linked)."""
    parties, truth = fiu_reports
    res = resolve_parties(parties, load_settings())
    scores = synthetic.scores(res.clusters, truth)
    assert scores["pair_f1"] >= 0.95 and scores["cluster_f1"] >= 0.95, scores
    # the few companies gave EM ~170 pairs, nearly all one party's: it failed with m = 0
    problems = [p for m in res.models.values() for p in m["training_problems"]]
    assert not any("m_probability" in p for p in problems), problems
    assert any(p.startswith("EM on name_key left out") for p in problems), problems


def test_copies_are_compared_once_and_bare_names_never_joined() -> None:
    """A bank copies its client's record into every report: Splink sees one copy, the others
    are linked to it; two records with nothing but the same name stay apart."""
    client = ("Jonathan Whitaker", D(1975, 3, 14), "GB1234567", "+44 7700 900123")
    rows = [(f"r{i}.xml#1#from", "person", *client, "0101", None) for i in range(5)]
    rows += [(f"s{i}.xml#1#to", "person", "John Smith", None, None, None, "0102", None)
             for i in range(2)]  # fmt: skip
    columns = ["record_id", "kind", "name", "birth_date", "id_number", "phone", "bank_id",
               "account_id"]  # fmt: skip
    background = synthetic.people(300, "default", seed=9).select(COLUMNS)
    cases = pl.DataFrame(rows, schema=columns, orient="row")
    res = resolve_parties(pl.concat([background, cases], how="diagonal_relaxed"), load_settings())
    assert res.stats["compared"]["person"] <= res.stats["records"]["person"] - 4
    assert len({party(res, f"r{i}.xml#1#from") for i in range(5)}) == 1
    copies = res.links.filter(pl.col("record_id_l") == "r0.xml#1#from")
    assert set(copies["linked_by"]) == {"identical"} and copies.height == 4
    assert party(res, "s0.xml#1#to") != party(res, "s1.xml#1#to")


@pytest.mark.parametrize(
    "doc, words",
    [("passport", "same passport number"), ("incorporation number", "same incorporation number")],
)
def test_the_document_is_named_once(doc: str, words: str) -> None:
    """goAML's entities carry an "incorporation number" (it read "same incorporation number
    number")."""
    from flows87.pipeline.resolve.explain import explain
    from flows87.pipeline.resolve.model import id_comparison

    model = {"comparisons": [id_comparison(load_settings())]}
    top = len(model["comparisons"][0]["comparison_levels"]) - 2  # "same", the null level apart
    pairs = pl.DataFrame(
        {"gamma_id_number": [top], "mw_id_number": [9.0], "id_type_norm_l": [doc],
         "id_type_norm_r": [doc]}
    )  # fmt: skip
    assert explain(pairs, model)["explanation"].item() == words
