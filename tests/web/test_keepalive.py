"""Someone reading or typing on a page stays signed in (issue 14: "the idle timeout must roll
while someone reads"; before, a reader was signed out after 30 minutes and lost the text they
typed): static/alive.js asks /session/alive after activity, and says so at once when the session
has already ended. Short timeouts here: 4 s idle, refreshed every second."""

from __future__ import annotations

import time

from test_browser import browser, sign_in  # noqa: F401 - the browser fixture
from web_client import SECRET, client_for, settings, top_case

from flows87.investigate.web import WebSettings, create_app
from flows87.investigate.web.server import BackgroundServer


def test_session_alive_answers_only_a_signed_in_user(store):
    app = create_app(store, settings(session_idle=600))
    assert client_for(app, "ivy").get("/session/alive").status_code == 204
    anonymous = client_for(app).get("/session/alive", follow_redirects=False)
    assert anonymous.status_code in (303, 401)


def test_typing_a_note_keeps_the_session_and_an_ended_one_is_announced(store, browser):  # noqa: F811
    web = WebSettings(secret_key=SECRET, allowed_hosts=["127.0.0.1"], session_idle=4)
    with BackgroundServer(store, web) as srv:
        context = browser.new_context(base_url=srv.url)
        context.set_default_timeout(15_000)
        pg = context.new_page()
        sign_in(pg, "ivy")
        pg.goto(f"/cases/{top_case(store)}")
        assert pg.locator("body").get_attribute("data-keepalive") == "1"
        note = pg.locator("textarea[name=body]")
        start = time.monotonic()
        while time.monotonic() - start < 9:  # more than twice the idle timeout, typing only
            note.press_sequentially("x", delay=0)
            time.sleep(0.5)
        assert pg.locator("#signed-out").count() == 0
        # still signed in: the same tab's next request is a page, not the sign-in form
        assert pg.request.get("/session/alive", max_redirects=0).status == 204
        time.sleep(5.5)  # now idle past the timeout
        note.press_sequentially("y", delay=0)
        pg.wait_for_selector("#signed-out")
        assert note.input_value().startswith("xxxx")  # the typed text is still there to copy
        context.close()
