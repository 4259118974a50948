"""The case page's "Parties" card (issue 15): a case loaded from a run on goAML reports shows
each resolved party holding one of its accounts, with its accounts at every bank, the names the
reports wrote it as, and for each link the evidence in words.

The store of this module is loaded from its own run: `flows87 synth --format goaml` at the
smallest size the generator makes (800 accounts, 7 days, 3 banks), then `flows87 run` (which
resolves the parties). HTTP for the page and the store rows, headless Chromium for what an
investigator sees; the screenshot goes to test-artifacts/browser/party-case.png.
"""

from __future__ import annotations

import html as html_text
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select
from test_browser import artifacts, browser, page, server, sign_in  # noqa: F401
from web_client import client_for

from flows87.cli import EXIT_OK, main
from flows87.investigate.store import load_run
from flows87.investigate.store.loader import prepare_run
from flows87.investigate.store.models import CaseAccount, CaseParty, CasePartyLink
from flows87.investigate.store.parties import case_parties


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run on synthetic goAML reports from three banks (replaces conftest's run here)."""
    base = tmp_path_factory.mktemp("party-run")
    data, run = base / "data", base / "run"
    args = ["synth", "--format", "goaml", "--accounts", "800", "--days", "7", "--banks", "3"]
    assert main([*args, "--seed", "3", "--out", str(data)]) == EXIT_OK
    assert main(["run", str(data), "--out", str(run)]) == EXIT_OK
    assert (run / "resolution" / "links.parquet").exists()
    return run


@pytest.fixture(scope="module")
def party_case(store) -> str:
    """The case whose party has the most accounts (at the most banks), then the most links."""
    with store.session() as s:
        best = None
        for p in s.scalars(select(CaseParty)):
            accounts = json.loads(p.accounts)
            banks = {a["bank_id"] for a in accounts if a["bank_id"]}
            key = (len(banks), len(accounts), p.n_links, p.case_id)
            best = max(best or key, key)
    assert best is not None, "no case of the goAML run has a resolved party"
    return best[-1]


def test_parties_loaded_are_those_of_the_case_accounts(store, run_dir):
    accounts = pl.read_parquet(run_dir / "accounts.parquet").select("account_id", "party_id")
    clusters = pl.read_parquet(run_dir / "resolution" / "clusters.parquet")
    with store.session() as s:
        members = {
            (c, a) for c, a in s.execute(select(CaseAccount.case_id, CaseAccount.account_id))
        }
        parties = s.scalars(select(CaseParty)).all()
        n_links = s.scalar(select(func.count()).select_from(CasePartyLink))
    assert parties and n_links
    party_of = dict(accounts.iter_rows())
    wanted = {(c, party_of[a]) for c, a in members if party_of.get(a)}
    wanted &= {(c, p) for c, p in wanted if p in set(clusters["party_id"])}
    assert {(p.case_id, p.party_id) for p in parties} == wanted
    for p in parties:
        listed = {a["account_id"] for a in json.loads(p.accounts)}
        # every account of the party in the run, the case's own marked
        assert listed == {a for a, q in party_of.items() if q == p.party_id}
        assert {a["account_id"] for a in json.loads(p.accounts) if a["in_case"]} == {
            a for c, a in members if c == p.case_id and party_of.get(a) == p.party_id
        }


def test_links_carry_their_evidence_in_words(store, party_case):
    with store.session() as s:
        parties = case_parties(s, party_case)
    assert parties
    top = max(parties, key=lambda p: (len(p["banks"]), len(p["accounts"]), p["n_links"]))
    assert top["names"] and top["links"]
    for link in top["links"]:
        assert link["explanation"] and link["probability"] >= 0.5
        assert link["record_l"] != link["record_r"] and link["n_pairs"] >= 1
    # one row per pair of accounts and evidence, standing for all the matched record pairs
    keys = [
        (*sorted([x["account_l"] or "", x["account_r"] or ""]), x["explanation"])
        for x in top["links"]
    ]
    assert len(keys) == len(set(keys))
    assert sum(x["n_pairs"] for x in top["links"]) <= top["n_links"]
    if len(top["links"]) < 25:
        assert sum(x["n_pairs"] for x in top["links"]) == top["n_links"]


def test_loading_again_changes_nothing_and_a_run_without_resolution_has_no_parties(
    store, run_dir, tmp_path
):
    with store.session() as s:
        before = s.scalar(select(func.count()).select_from(CaseParty))
        again = load_run(s, run_dir, "demo")
        after = s.scalar(select(func.count()).select_from(CaseParty))
    assert (again.new, again.updated, before) == (0, 0, after)
    bare = tmp_path / "run"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("resolution"))
    rows = prepare_run(bare)
    assert rows.parties.is_empty() and rows.party_links.is_empty()
    assert prepare_run(run_dir).parties.height == before


def _linked(store, case_id: str) -> tuple[int, dict]:
    """The position (1-based, as the card numbers them) and the first party with links."""
    with store.session() as s:
        parties = case_parties(s, case_id)
    return next((i + 1, p) for i, p in enumerate(parties) if p["links"])


def test_case_page_lists_the_party(app, party_case, store):
    client = client_for(app, "ivy")
    page_html = html_text.unescape(client.get(f"/cases/{party_case}").text)
    _, top = _linked(store, party_case)
    assert 'id="parties"' in page_html
    assert top["party_id"] in page_html
    assert top["links"][0]["explanation"] in page_html
    assert all(a["account_id"] in page_html for a in top["accounts"])


def test_party_card_in_the_browser(page, party_case, store, artifacts):  # noqa: F811
    pg = page
    sign_in(pg, "ivy")
    pg.goto(f"/cases/{party_case}")
    card = pg.locator("#parties")
    card.wait_for()
    n, party = _linked(store, party_case)
    first = pg.locator(f"#party-{n}")
    if first.get_attribute("open") is None:  # the first three are open
        first.locator("summary").click()
    shown = first.locator("table.party-accounts tbody tr")
    assert shown.count() == len(party["accounts"])
    evidence = first.locator("td.link-evidence")
    assert evidence.count() == len(party["links"])
    assert evidence.first.inner_text() == party["links"][0]["explanation"]
    for name in party["names"][:3]:
        assert name in first.locator(".party-names").inner_text()
    first.scroll_into_view_if_needed()
    card.screenshot(path=str(artifacts / "party-case.png"))
    assert not pg.problems, pg.problems
