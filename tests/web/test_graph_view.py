"""The case page's money graph (issue 14, investigators' views): names on nodes, currency and
dates on edges, a time slider, a click that draws a node's counterparties from the store, SVG
and PNG downloads, and a large case drawn with at most the cap of accounts inside its box.

HTTP for the JSON, headless Chromium for what graph.js draws. The large case is made in this
module's own store: 40 case accounts and 360 counterparties in 800 transfers, one of the
counterparties also the member of a second case (what a click on it adds). Screenshots go to
test-artifacts/browser/graph-*.png."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from test_browser import artifacts, browser, page, server, sign_in  # noqa: F401
from web_client import client_for, top_case

from flows87.investigate.store import account_counterparties, case_graph
from flows87.investigate.store.graph import GRAPH_LIMIT
from flows87.investigate.store.models import Case, CaseAccount, CaseTransaction

BIG, OTHER = "C-graph-big", "C-graph-other"
HUB = "BIG-C000"  # the big case's largest counterparty, a member of the other case
SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _case(case_id: str, anchor: str, accounts: int, txns: list[CaseTransaction]) -> Case:
    now = datetime.now(UTC)
    return Case(
        case_id=case_id,
        rank=None,
        risk_score=0.01,
        anchor_account=anchor,
        n_accounts=accounts,
        n_signals=0,
        n_transactions=len(txns),
        first_ts=min(t.ts for t in txns if t.ts),
        last_ts=max(t.ts for t in txns if t.ts),
        total_amount=sum(t.amount_base or 0.0 for t in txns),
        summary="A synthetic case for the graph's tests.",
        fingerprint=case_id,
        first_seen_at=now,
        evidence_updated_at=now,
        updated_at=now,
    )


def _txn(case_id: str, n: int, src: str, dst: str, amount: float, currency: str = "USD"):
    rate = {"USD": 1.0, "EUR": 1.1}[currency]
    return CaseTransaction(
        case_id=case_id,
        txn_id=f"{case_id}-T{n:04d}",
        ts=START + timedelta(hours=3 * n),
        src_account=src,
        dst_account=dst,
        amount=amount,
        currency=currency,
        amount_base=round(amount * rate, 2),
    )


@pytest.fixture(scope="module")
def big_case(store) -> str:
    """40 members (BIG-M00 the anchor) and 360 counterparties (BIG-C000 the largest) in 800
    transfers over 100 days, in USD and EUR; a second case where BIG-C000 pays 5 accounts."""
    rnd = Random(14)
    members = [f"BIG-M{i:02d}" for i in range(40)]
    others = [f"BIG-C{i:03d}" for i in range(360)]
    txns = [_txn(BIG, 0, HUB, members[0], 500_000.0)]
    for n in range(1, 800):
        m, c = rnd.choice(members), others[n % 360]
        src, dst = (c, m) if n % 2 else (m, c)
        amount = round(rnd.uniform(100, 9_000), 2)
        txns.append(_txn(BIG, n, src, dst, amount, "EUR" if n % 7 == 0 else "USD"))
    other = [_txn(OTHER, n, HUB, f"OTHER-{n}", 1_000.0 + n) for n in range(5)]
    with store.session() as s:
        s.add(_case(BIG, members[0], 400, txns))
        s.add(_case(OTHER, HUB, 1, other))
        s.flush()
        for i, a in enumerate(members):
            role = "anchor" if i == 0 else "member"
            s.add(CaseAccount(case_id=BIG, account_id=a, position=i, role=role, name=f"Big {i}"))
        s.add(CaseAccount(case_id=OTHER, account_id=HUB, position=0, role="anchor", name="Hub Ltd"))
        s.add_all(txns + other)
    return BIG


# -- the JSON ----------------------------------------------------------------------------


def test_a_large_case_draws_at_most_the_cap_and_folds_the_rest_per_side(store, big_case):
    with store.session() as s:
        g = case_graph(s, big_case)
    accounts = [n for n in g["nodes"] if not n["aggregate"]]
    others = {n["id"]: n for n in g["nodes"] if n["aggregate"]}
    assert len(accounts) == GRAPH_LIMIT
    assert g["summary"] == g["summary"] | {"accounts": 400, "drawn": 60, "hidden": 340}
    # every case account is drawn (they come first), then the counterparties moving most money
    assert {n["id"] for n in accounts if n["in_case"]} == {f"BIG-M{i:02d}" for i in range(40)}
    assert HUB in {n["id"] for n in accounts}
    assert next(n for n in accounts if n["id"] == HUB)["name"] == "Hub Ltd"  # from the other case
    # the hidden accounts are in the "+N others" nodes, senders and receivers, each once
    assert set(others) == {"others:senders", "others:receivers"}
    assert sum(o["count"] for o in others.values()) == 340
    listed = [m["id"] for o in others.values() for m in o["members"]]
    assert len(listed) == len(set(listed)) == 340
    assert others["others:senders"]["flow_out"] > 0 and others["others:receivers"]["flow_in"] > 0
    # edges only between drawn nodes; all 800 transfers are on them (none between two hidden)
    ids = {n["id"] for n in g["nodes"]}
    assert all(e["src"] in ids and e["dst"] in ids for e in g["edges"])
    assert sum(e["count"] for e in g["edges"]) == 800
    assert sum(len(e["txns"]) for e in g["edges"]) == 800


def test_edges_carry_currencies_and_times_and_the_limit_is_a_parameter(app, store, big_case):
    c = client_for(app, "ivy")
    g = c.get(f"/cases/{big_case}/graph").json()
    assert g["base_currency"] == "USD"
    for e in g["edges"]:
        assert set(e["currencies"]) <= {"USD", "EUR"} and e["currencies"]
        assert e["first_ts"] <= e["last_ts"]
        times = [t[0] for t in e["txns"]]
        assert times == sorted(times) and len(times) == e["count"]
        assert round(sum(t[1] for t in e["txns"]), 2) == pytest.approx(e["amount"])
    hub = next(e for e in g["edges"] if e["src"] == HUB and e["dst"] == "BIG-M00")
    assert hub["currencies"]["USD"] >= 500_000.0
    wider = c.get(f"/cases/{big_case}/graph?limit=250").json()
    assert len([n for n in wider["nodes"] if not n["aggregate"]]) == 250
    assert len(c.get(f"/cases/{big_case}/graph?limit=100000").json()["nodes"]) <= 402


def test_expand_adds_the_counterparties_the_store_holds_from_other_cases(app, store, big_case):
    c = client_for(app, "ivy")
    found = c.get(f"/cases/{big_case}/graph/expand/{HUB}").json()
    ids = {n["id"] for n in found["nodes"]}
    assert {f"OTHER-{n}" for n in range(5)} <= ids
    assert found["outside_case"] == 5
    outside = [e for e in found["edges"] if e["outside_case"]]
    assert {e["dst"] for e in outside} == {f"OTHER-{n}" for n in range(5)}
    with store.session() as s:
        direct = account_counterparties(s, big_case, HUB, limit=3)
    assert len(direct["nodes"]) == 4 and direct["more"] == direct["counterparties"] - 3
    assert c.get(f"/cases/{big_case}/graph/expand/NO-SUCH-ACCOUNT").status_code == 404
    assert c.get(f"/cases/NO-SUCH-CASE/graph/expand/{HUB}").status_code == 404
    anonymous = client_for(app)
    url = f"/cases/{big_case}/graph/expand/{HUB}"
    r = anonymous.get(url, headers={"Accept": "application/json"}, follow_redirects=False)
    assert r.status_code == 401 and "nodes" not in r.text
    r = anonymous.get(url, follow_redirects=False)  # a browser's address bar: the login page
    assert r.status_code == 303 and "nodes" not in r.text


# -- in Chromium -----------------------------------------------------------------------------


def open_graph(pg, case_id: str) -> None:
    pg.goto(f"/cases/{case_id}")
    pg.wait_for_selector("#money-graph[data-ready='1']")
    pg.locator("#graph-section").scroll_into_view_if_needed()


def test_the_top_case_graph_names_nodes_and_dates_edges(page, server, store, artifacts):  # noqa: F811
    pg = page
    case_id = top_case(store)
    sign_in(pg, "ivy")
    open_graph(pg, case_id)
    with store.session() as s:
        g = case_graph(s, case_id)
    nodes = {n["id"]: n for n in g["nodes"]}
    circles = pg.locator("#graph-svg circle.node")
    assert circles.count() == len(nodes)
    labels = dict(
        pg.eval_on_selector_all(
            "#graph-svg text.node-label", "ts => ts.map(t => [t.dataset.id, t.textContent])"
        )
    )
    assert set(labels) == set(nodes)
    for i, n in nodes.items():
        if n["name"]:  # the name (clipped), else the end of the id
            assert labels[i].rstrip("…") == n["name"][: len(labels[i].rstrip("…"))]
        else:
            assert labels[i].lstrip("…") in i
    # full ids on hover
    titles = pg.eval_on_selector_all(
        "#graph-svg circle.node",
        "cs => cs.map(c => [c.dataset.id, c.querySelector('title').textContent])",
    )
    assert all(t.startswith(i) for i, t in titles if not nodes[i]["aggregate"])
    # every edge's title has its currency and dates; the largest carry a visible label
    edge_titles = pg.eval_on_selector_all(
        "#graph-svg line.edge", "ls => ls.map(l => l.querySelector('title').textContent)"
    )
    assert len(edge_titles) == len(g["edges"])
    for t in edge_titles:
        assert re.search(r"\b[A-Z]{3}\b", t) and DATE.search(t), t
    edge_labels = pg.locator("#graph-svg text.edge-label").all_text_contents()
    assert edge_labels and all(re.search(r"[A-Z]{3} · \d{4}-\d{2}-\d{2}", t) for t in edge_labels)
    pg.locator("#graph-section").screenshot(path=str(artifacts / "graph-top-case.png"))
    assert pg.problems == [], pg.problems


def test_the_time_slider_hides_later_edges(page, server, store, artifacts):  # noqa: F811
    pg = page
    case_id = top_case(store)
    sign_in(pg, "ivy")
    open_graph(pg, case_id)
    total = pg.locator("#graph-svg line.edge").count()
    assert int(pg.get_attribute("#money-graph", "data-visible-edges")) == total
    stops = int(pg.get_attribute("#graph-to", "max"))
    assert stops > 1
    pg.focus("#graph-to")
    for _ in range(stops // 2):
        pg.keyboard.press("ArrowLeft")
    visible = pg.locator("#graph-svg line.edge:not(.off-period)")
    shown = visible.count()
    assert 0 < shown < total
    assert int(pg.get_attribute("#money-graph", "data-visible-edges")) == shown
    # what stays drawn started by the end of the period; the others are not displayed
    end = re.search(r"– (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC", pg.inner_text("#graph-period"))
    assert end
    firsts = pg.eval_on_selector_all(
        "#graph-svg line.edge:not(.off-period)", "ls => ls.map(l => l.dataset.first)"
    )
    assert all(f.replace("T", " ")[:16] <= end.group(1) for f in firsts)
    hidden = pg.locator("#graph-svg line.edge.off-period").first
    assert hidden.evaluate("l => getComputedStyle(l).display") == "none"
    pg.locator("#graph-section").screenshot(path=str(artifacts / "graph-time-slider.png"))
    # the start of the period moves too (and pushes the end along): only the last transfers
    pg.keyboard.press("Home")
    pg.focus("#graph-from")
    pg.keyboard.press("End")
    assert pg.input_value("#graph-to") == pg.input_value("#graph-from") == str(stops)
    assert 0 < pg.locator("#graph-svg line.edge:not(.off-period)").count() < total
    # back to everything
    pg.focus("#graph-to")
    pg.keyboard.press("End")
    pg.focus("#graph-from")
    pg.keyboard.press("Home")
    assert pg.locator("#graph-svg line.edge:not(.off-period)").count() == total
    assert pg.problems == [], pg.problems


def test_a_click_draws_a_nodes_counterparties_from_the_store(page, server, big_case, artifacts):  # noqa: F811
    pg = page
    sign_in(pg, "ivy")
    open_graph(pg, big_case)
    before = pg.locator("#graph-svg circle.node").count()
    pg.locator(f"#graph-svg circle.node[data-id='{HUB}']").click()
    assert pg.inner_text("#graph-details-title") == HUB
    assert "Hub Ltd" in pg.inner_text("#graph-details")
    pg.click("#graph-expand")
    pg.wait_for_selector("#graph-expanded")
    assert "5 counterparties added" in pg.inner_text("#graph-expanded")
    assert pg.locator("#graph-svg circle.node").count() == before + 5
    for n in range(5):
        assert pg.locator(f"#graph-svg circle.node[data-id='OTHER-{n}']").count() == 1
    assert pg.locator("#graph-svg line.edge.store").count() == 5
    assert pg.locator(f"#graph-svg circle.node.expanded[data-id='{HUB}']").count() == 1
    pg.locator("#graph-section").screenshot(path=str(artifacts / "graph-expanded.png"))
    assert pg.problems == [], pg.problems


def test_svg_and_png_downloads(page, server, store, artifacts, tmp_path):  # noqa: F811
    pg = page
    case_id = top_case(store)
    sign_in(pg, "ivy")
    open_graph(pg, case_id)
    nodes = pg.locator("#graph-svg circle.node").count()
    with pg.expect_download() as info:
        pg.click("#graph-download-svg")
    download = info.value
    assert download.suggested_filename == f"case-{case_id}-graph.svg"
    path = tmp_path / "graph.svg"
    download.save_as(path)
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg" and float(root.get("width")) > 0
    circles = root.findall(f".//{SVG}circle")
    assert len(circles) == nodes and all(c.get("fill") for c in circles)  # styled on its own
    texts = root.findall(f".//{SVG}text")
    assert texts and all(t.get("fill") and t.get("font-size") for t in texts)
    # labels keep their halo behind the letters (without paint-order the halo hides them)
    assert all(t.get("paint-order", "").startswith("stroke") for t in texts if t.get("stroke"))
    assert len(root.findall(f".//{SVG}line")) == pg.locator("#graph-svg line.edge").count()
    with pg.expect_download() as info:
        pg.click("#graph-download-png")
    png = info.value
    assert png.suggested_filename == f"case-{case_id}-graph.png"
    png.save_as(artifacts / "graph-export.png")
    assert (artifacts / "graph-export.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pg.problems == [], pg.problems


def test_a_large_case_draws_at_most_the_cap_inside_its_box(page, server, big_case, artifacts):  # noqa: F811
    pg = page
    sign_in(pg, "ivy")
    open_graph(pg, big_case)
    circles = pg.locator("#graph-svg circle.node")
    assert circles.count() <= GRAPH_LIMIT + 2
    assert pg.locator("#graph-svg circle.node.others").count() == 2
    assert "340 more" in pg.inner_text("#graph-status")
    frame = pg.locator("#money-graph").bounding_box()
    svg = pg.locator("#graph-svg").bounding_box()
    inside = pg.eval_on_selector_all(
        "#graph-svg circle.node, #graph-svg text.node-label",
        """(es, f) => es.every(e => { const r = e.getBoundingClientRect();
             return r.left >= f.x - 1 && r.top >= f.y - 1 &&
                    r.right <= f.x + f.width + 1 && r.bottom <= f.y + f.height + 1; })""",
        svg,
    )
    assert inside
    assert svg["x"] >= frame["x"] - 1 and svg["x"] + svg["width"] <= frame["x"] + frame["width"] + 1
    assert svg["height"] <= 600
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # the "+N others" node lists who it holds
    pg.locator("#graph-svg circle.node.others").first.click()
    assert "others" in pg.inner_text("#graph-details-title")
    assert pg.locator("#graph-details ul.graph-others li").count() > 100
    pg.locator("#graph-section").screenshot(path=str(artifacts / "graph-large-case.png"))
    # more accounts on request, still inside the box
    pg.select_option("#graph-limit", "250")
    pg.wait_for_selector("#money-graph[data-ready='1'][data-nodes='252']")
    assert pg.problems == [], pg.problems
