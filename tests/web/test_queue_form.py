"""The queue's filter form submitted as a browser submits it (every field, empty ones as ""),
in headless Chromium, and bad values answered on the page rather than as a JSON error.

Before the fix the Filter button always failed: the empty "Risk from/to" boxes reached FastAPI's
float parameters and the answer was a 400 in JSON (`min_risk: Input should be a valid number`)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from test_browser import artifacts, browser, page, server, sign_in  # noqa: F401
from web_client import client_for

from flows87.investigate.store import list_cases

ROW = re.compile(r'class="case-link" href="/cases/([^"]+)"')


def submit(pg) -> tuple[int, dict[str, list[str]]]:
    """Click Filter; the status of the page it loads and the query string the form sent."""
    with pg.expect_navigation() as nav:
        pg.click("#filters button[type=submit]")
    response = nav.value
    assert response is not None
    return response.status, parse_qs(urlsplit(pg.url).query, keep_blank_values=True)


def test_filter_button_with_every_field_empty_then_each_field_set(page, server, store, artifacts):  # noqa: F811
    pg = page
    sign_in(pg, "sam")
    with store.session() as s:
        top = list_cases(s, page_size=1).items[0]
    # every field as the page offers it: the empty boxes are sent as ""
    status, sent = submit(pg)
    assert sent["min_risk"] == [""] and sent["max_risk"] == [""] and sent["q"] == [""]
    assert status == 200, pg.inner_text("main")[:500]
    assert pg.locator("a.case-link").count() > 0
    assert pg.locator("#filter-errors").count() == 0

    day = top["first_ts"].date().isoformat()
    steps = [
        ("q", lambda: pg.fill("#filters input[name=q]", top["case_id"])),
        ("status", lambda: pg.check("#filters input[name=status][value=closed]")),
        ("typology", lambda: pg.select_option("#filters select[name=typology]", index=1)),
        ("assignee", lambda: pg.select_option("#filters select[name=assignee]", "-")),
        ("disposition", lambda: pg.select_option("#filters select[name=disposition]", index=1)),
        ("min_risk", lambda: pg.fill("#filters input[name=min_risk]", "0.5")),
        ("max_risk", lambda: pg.fill("#filters input[name=max_risk]", "1")),
        ("date_field", lambda: pg.select_option("#filters select[name=date_field]", "first_seen")),
        ("date_from", lambda: pg.fill("#filters input[name=date_from]", day)),
        ("date_to", lambda: pg.fill("#filters input[name=date_to]", day)),
        ("awaiting", lambda: pg.check("#filters input[name=awaiting]")),
        ("overdue", lambda: pg.check("#filters input[name=overdue]")),
        ("page_size", lambda: pg.select_option("#filters select[name=page_size]", "10")),
    ]
    for field, fill in steps:
        pg.goto("/cases")
        fill()
        status, sent = submit(pg)
        assert status == 200, (field, pg.inner_text("main")[:500])
        assert any(v for v in sent[field]), (field, sent)
        assert pg.locator("#filter-errors").count() == 0, field
        assert pg.locator("table#queue").count() + pg.locator("p.empty").count() == 1
        if field == "q":
            assert pg.locator("a.case-link").all_inner_texts() == [top["case_id"]]
        # the form shows what was asked, so filtering again keeps it
        if field in ("min_risk", "q"):
            assert pg.input_value(f"#filters input[name={field}]") == sent[field][0]
    pg.goto("/cases")
    pg.fill("#filters input[name=min_risk]", "0.5")
    pg.fill("#filters input[name=max_risk]", "1")
    pg.screenshot(path=str(artifacts / "10-queue-filter-form.png"))
    assert pg.problems == [], pg.problems


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_risk": "abc"}, "risk from 'abc' is not a number"),
        ({"max_risk": "-1"}, "risk to '-1' must be a number from 0 to 1000"),
        ({"date_from": "2026-13-45"}, "is not a date like 2026-01-31"),
        ({"page_size": "x"}, "the page size 'x' must be a whole number"),
        ({"page": "0"}, "the page '0' must be a whole number"),
        ({"sort": "nope"}, "unknown sort 'nope'"),
        ({"status": "gone"}, "unknown status 'gone'"),
    ],
)
def test_a_bad_filter_is_a_message_on_the_queue_page(app, params, message):
    c = client_for(app, "ivy")
    r = c.get("/cases", params=params)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert 'id="filter-errors"' in r.text and message in r.text.replace("&#39;", "'")
    assert 'id="filters"' in r.text  # the form is there to fix it


def test_empty_fields_are_no_filter_over_http(app, store):
    c = client_for(app, "ivy")
    blank = {
        k: ""
        for k in [
            "q",
            "typology",
            "assignee",
            "disposition",
            "min_risk",
            "max_risk",
            "date_from",
            "date_to",
            "page",
            "page_size",
            "awaiting",
            "overdue",
            "status",
            "sort",
            "date_field",
        ]
    }
    r = c.get("/cases", params=blank)
    assert r.status_code == 200, r.text[-600:]
    with store.session() as s:
        open_ids = [
            x["case_id"]
            for x in list_cases(s, status=["new", "in_review", "escalated"], page_size=25).items
        ]
    assert ROW.findall(r.text) == open_ids
