"""The case page's "Model" card (issue 16): a case the learned scorer ranked shows the learned,
today's and blended scores, the model's version and what it was trained on, and its reasons in
words with the rules' titles; a case no model scored says so.

The store of this module is loaded from a real pipeline run with a learned model's scores
blended in (learned_run.py); the no-model case comes from the same run as the pipeline left it.
HTTP for the page, headless Chromium for what an investigator sees; the screenshot goes to
test-artifacts/browser/model-case.png.
"""

from __future__ import annotations

import html as html_text
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from learned_run import make_learned_run
from sqlalchemy import select
from test_browser import artifacts, browser, page, server, sign_in  # noqa: F401
from web_client import client_for, loaded_store, settings, top_case

from flows87.investigate.store import Store, rule_info
from flows87.investigate.store.learned import case_model
from flows87.investigate.store.models import Case, LearnedModel
from flows87.investigate.web import create_app
from flows87.investigate.web.model_view import reason, trained_on


@pytest.fixture(scope="module")
def run_dir(web_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's pipeline run with a learned model's scores blended in (replaces
    conftest's run here)."""
    return make_learned_run(web_run, tmp_path_factory.mktemp("learned") / "run")


@pytest.fixture(scope="module")
def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "learning" / "model" / "model.meta.json").read_text())


@pytest.fixture(scope="module")
def titles() -> dict[str, str]:
    return {k: v["title"] for k, v in rule_info().items()}


@pytest.fixture(scope="module")
def learned_case(store: Store, titles: dict[str, str]) -> str:
    """The riskiest case whose reasons name a rule of the catalogue."""
    with store.session() as s:
        for case_id, reasons in s.execute(
            select(Case.case_id, Case.learned_reasons).order_by(Case.risk_score.desc())
        ):
            for text in json.loads(reasons or "[]"):
                words = text.split(" ")
                if words[0] == "signal" and words[1] in titles:
                    return case_id
    pytest.fail("no case's learned reasons name a rule of the catalogue")


@pytest.fixture(scope="module")
def plain_store(web_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store loaded from the run as the pipeline left it (no model)."""
    db = tmp_path_factory.mktemp("plain-store") / "cases.db"
    plain = loaded_store(f"sqlite:///{db}", web_run)
    yield plain
    plain.dispose()


def test_the_store_keeps_the_runs_learned_scores_and_model(store, run_dir, meta):
    cases = pl.read_parquet(run_dir / "cases.parquet")
    assert cases["learned_score"].null_count() == 0
    with store.session() as s:
        rows = {c.case_id: c for c in s.scalars(select(Case))}
        model = s.get(LearnedModel, meta["version"])
    assert model is not None and model.labelled == 800 == meta["labelled"]
    assert model.positives == meta["positives"] and model.cutoff == meta["cutoff"]
    for r in cases.iter_rows(named=True):
        row = rows[r["case_id"]]
        assert row.learned_score == pytest.approx(r["learned_score"])
        assert row.today_score == pytest.approx(r["today_score"])
        assert row.risk_score == pytest.approx(r["risk_score"])
        assert json.loads(row.learned_reasons) == r["learned_reasons"]
        assert row.model_version == meta["version"]


def test_reasons_in_words():
    titles = {"ml_fan_in": "Fan-in to one account"}
    said = reason("signal ml_fan_in 0.9 (+1.20)", titles)
    assert said == {
        "text": "scored 0.9",
        "weight": 1.2,
        "signal_id": "ml_fan_in",
        "title": "Fan-in to one account",
    }
    assert reason("signal new_rule missing (+0.31)", titles)["text"] == "no signal on this account"
    assert reason("signal new_rule missing (+0.31)", titles)["title"] is None
    assert reason("out sum (30d) 3.608e+04 (-0.50)", titles)["text"] == "out sum (30d): 36,080"
    assert reason("whatever the pipeline wrote", titles)["weight"] is None
    model = {"labelled": 212, "positives": 57, "cutoff": "2026-03-01T00:00:00+00:00"}
    assert trained_on(model) == "trained on 212 decided accounts (57 reported) before 2026-03-01"
    model["negatives"] = 155  # decided accounts only
    assert trained_on(model) == "trained on 212 decided accounts (57 reported) before 2026-03-01"
    model["negatives"] = 155 + 5000
    assert trained_on(model) == (
        "trained on 212 decided accounts (57 reported) before 2026-03-01, "
        "and on 5,000 accounts no case named (presumed negatives)"
    )


def test_case_page_shows_the_models_reasons(app, store, learned_case, meta, titles):
    with store.session() as s:
        found = case_model(s, learned_case)
    assert found is not None and found["version"] == meta["version"]
    page_html = html_text.unescape(client_for(app, "ivy").get(f"/cases/{learned_case}").text)
    card = page_html[page_html.index('id="model"') : page_html.index('id="signals"')]
    assert meta["version"] in card
    wanted = (
        f"trained on {meta['labelled']:,} decided accounts ({meta['positives']:,} reported) "
        f"before {meta['cutoff'][:10]}"
    )
    assert wanted in card
    assert f"{found['learned_score']:.2f}" in card and f"{found['today_score']:.2f}" in card
    assert 'id="model-none"' not in card
    named = [r.split(" ")[1] for r in found["reasons"] if r.startswith("signal ")]
    assert any(titles.get(sid) and titles[sid] in card for sid in named)
    assert card.count('class="model-reason"') == len(found["reasons"])


def test_case_without_a_model_says_so(plain_store):
    case_id = top_case(plain_store)
    with plain_store.session() as s:
        assert case_model(s, case_id) is None
    client = client_for(create_app(plain_store, settings()), "ivy")
    page_html = client.get(f"/cases/{case_id}").text
    assert 'id="model"' in page_html
    assert "No learned model scored this case" in page_html
    assert 'id="model-version"' not in page_html


def test_model_card_in_the_browser(page, learned_case, store, meta, titles, artifacts):  # noqa: F811
    with store.session() as s:
        found = case_model(s, learned_case)
    assert found is not None
    pg = page
    sign_in(pg, "ivy")
    pg.goto(f"/cases/{learned_case}")
    card = pg.locator("#model")
    card.wait_for()
    assert pg.inner_text("#model-version") == meta["version"]
    assert pg.inner_text("#model-learned") == f"{found['learned_score']:.2f}"
    assert pg.inner_text("#model-risk") == f"{found['risk_score']:.2f}"
    items = pg.locator("#model-reasons li")
    assert items.count() == len(found["reasons"]) > 0
    shown = [items.nth(i).inner_text() for i in range(items.count())]
    for text, line in zip(found["reasons"], shown, strict=True):
        words = text.split(" ")
        if words[0] == "signal" and words[1] in titles:
            assert titles[words[1]] in line and words[1] in line
    assert any(
        titles[w[1]] in line
        for text, line in zip(found["reasons"], shown, strict=True)
        if (w := text.split(" "))[0] == "signal" and w[1] in titles
    )
    assert "trained on" in card.inner_text()
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(artifacts / "model-case.png"))
    assert not pg.problems, pg.problems


def test_queue_marks_the_cases_the_model_scored(app, store, plain_store):
    with store.session() as s:
        first = s.execute(
            select(Case.learned_score, Case.today_score).order_by(Case.risk_score.desc())
        ).first()
    assert first is not None
    queue = client_for(app, "ivy").get("/cases").text
    assert f"model {first.learned_score:.2f} · today {first.today_score:.2f}" in queue
    plain = client_for(create_app(plain_store, settings()), "ivy").get("/cases").text
    assert "model-mark" not in plain
