"""The forecast pages: home, a forecast with its forms, a new forecast, search and filters, over
every question type, through the real app (TestClient) on SQLite and PostgreSQL.

Forms carry the session's CSRF token and redirect (303) after a change; bad input shows the form
again with the CLI's very line (compared with ``tracker`` run on the same text) and changes
nothing; owners see the forms that settle a forecast and others do not; what people typed comes
out escaped."""

from __future__ import annotations

import html
import importlib.util
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from freezegun import freeze_time
from markupsafe import escape
from sqlalchemy.engine import Engine

from predictions import store
from predictions.db import write_session
from predictions.models import Check, Evidence, Proposal
from tests.service.support import add_user, csrf_of, live_server, sign_in

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'

#: A new forecast of each type, as the form takes it (and the CLI's options for the same).
NEW = {
    "binary": {"kind": "binary", "forecast": "70%"},
    "numeric": {"kind": "numeric", "range": "0..34", "open": "upper",
                "forecast": "10%=4,50%=8,90%=15"},
    "date": {"kind": "date", "range": "2026-01-01..2035-12-31",
             "forecast": "25%=2027-06,50%=2028-06,75%=2030"},
    "choice": {"kind": "choice", "options": "DeepSeek,Alibaba Qwen,Other", "forecast": "35,30,35"},
}  # fmt: skip
#: An update of each type: the form's fields.
UPDATE = {
    "binary": {"forecast": "62%"},
    "numeric": {"forecast": "10%=5,50%=9,90%=14"},
    "date": {"forecast": "normal:2029-01,300"},
    "choice": {"option0": "20", "option1": "50", "option2": "30"},
}
#: What each type's forecast page says of the update above.
UPDATED = {
    "binary": "62%",
    "numeric": "median 9",
    "date": "median 2029-01",
    "choice": "Alibaba Qwen 50%",
}
#: A resolution of each type, and how the page says it.
OUTCOME = {
    "binary": ("yes", "YES"),
    "numeric": ("11", "11"),
    "date": ("2028-06-30", "2028-06-30"),
    "choice": ("Other", "Other"),
}


class Browser:
    """A signed-in person: a TestClient with their session cookie."""

    def __init__(self, app: FastAPI, name: str, password: str) -> None:
        self.client = TestClient(app, follow_redirects=False)
        self.name = name
        response = sign_in(self.client, name, password)
        assert response.status_code == 303, response.text

    def get(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, response.text
        return response.text

    def post(self, action: str, data: dict[str, str], page: str | None = None) -> Any:
        """Post a form of ``page`` (default: the page the action belongs to) with its token."""
        source = self.get(page or _page_of(action))
        token = csrf_of(source)
        return self.client.post(action, data={"csrf_token": token, **data})

    def add(self, kind: str = "binary", **fields: str) -> int:
        data = {"title": f"A {kind} question", "due": "2030-12-31", "criteria": "Counted."}
        data.update(NEW[kind])
        data.update(fields)
        response = self.post("/forecasts/new", data)
        assert response.status_code == 303, _error(response.text) or response.text
        found = re.fullmatch(r"/forecasts/(\d+)", response.headers["location"])
        assert found
        return int(found.group(1))


def _page_of(action: str) -> str:
    found = re.match(r"/forecasts/\d+", action)
    if action == "/forecasts/new" or not found:
        return "/forecasts/new" if action == "/forecasts/new" else "/"
    return found.group(0)


def _error(text: str) -> str | None:
    """The page's error line, unescaped."""
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', text, re.S)
    return html.unescape(found.group(1)) if found else None


def _cli_error(result: Any) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert lines, result.output
    return lines[0]


@pytest.fixture
def people(app: FastAPI) -> dict[str, str]:
    """Passwords of mei (member), bob (member), ada (admin) and val (viewer)."""
    roles = {"mei": "member", "bob": "member", "ada": "admin", "val": "viewer"}
    return {name: add_user(app, name, role) for name, role in roles.items()}


@pytest.fixture
def mei(app: FastAPI, people: dict[str, str]) -> Browser:
    return Browser(app, "mei", people["mei"])


@pytest.fixture
def bob(app: FastAPI, people: dict[str, str]) -> Browser:
    return Browser(app, "bob", people["bob"])


# --- every page of every type --------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(NEW))
def test_pages_new_forecast_then_its_page_update_and_resolution(
    kind: str, mei: Browser, bob: Browser
) -> None:
    form = mei.get("/forecasts/new")
    assert 'action="/forecasts/new"' in form and 'name="csrf_token"' in form
    fid = mei.add(kind, tags="china, ai")
    page = mei.get(f"/forecasts/{fid}")
    assert f"A {kind} question" in page and "Counted." in page
    assert "2030-12-31" in page and 'href="/forecasts?tag=china&amp;status=all"' in page
    assert "<svg" in page and 'class="history narrow"' in page and 'class="history wide"' in page
    assert "style=" not in page and "<script" not in page
    assert f'action="/forecasts/{fid}/resolve"' in page  # mei owns it
    # bob forecasts too: any member, on any forecast
    response = bob.post(f"/forecasts/{fid}/estimate", UPDATE[kind])
    assert response.status_code == 303 and response.headers["location"].startswith(
        f"/forecasts/{fid}"
    )
    seen = bob.get(f"/forecasts/{fid}")
    assert UPDATED[kind] in seen and "mei" in seen
    assert f'action="/forecasts/{fid}/resolve"' not in seen  # not bob's to settle
    # the home page and the search list it
    home = mei.get("/")
    assert f'href="/forecasts/{fid}"' in home
    assert f'href="/forecasts/{fid}"' in mei.get("/forecasts?q=question&status=open")
    # mei resolves it
    typed, shown = OUTCOME[kind]
    response = mei.post(f"/forecasts/{fid}/resolve", {"outcome": typed, "note": "done"})
    assert response.status_code == 303, _error(response.text)
    page = mei.get(f"/forecasts/{fid}")
    assert f"resolved: {shown}" in page and f'action="/forecasts/{fid}/reopen"' in page
    assert f'href="/forecasts/{fid}"' in mei.get("/")  # recently resolved


def test_pages_every_type_draws_its_history(mei: Browser, bob: Browser) -> None:
    charts = {}
    for kind in NEW:
        fid = mei.add(kind)
        assert bob.post(f"/forecasts/{fid}/estimate", UPDATE[kind]).status_code == 303
        charts[kind] = mei.get(f"/forecasts/{fid}")
    # binary: one line per forecaster; numeric and date: a band (10-90%) around each median
    assert charts["binary"].count("<polyline") == 2 * 2  # two drawings, two forecasters
    for kind in ("numeric", "date"):
        assert charts[kind].count("<polygon") == 2 * 2
        assert "10-90%" in charts[kind]
    # choice: one chart per forecaster, one line per option
    assert charts["choice"].count("<polyline") == 2 * 2 * 3
    assert "<figcaption>mei (you)</figcaption>" in charts["choice"]
    assert "<meter" in charts["choice"]
    for page in charts.values():
        assert "style=" not in page


def test_pages_choice_update_form_has_a_field_per_option(mei: Browser) -> None:
    fid = mei.add("choice")
    page = mei.get(f"/forecasts/{fid}")
    for i, option in enumerate(("DeepSeek", "Alibaba Qwen", "Other")):
        assert f'name="option{i}"' in page and option in page
    assert 'name="option0" inputmode="decimal" size="5" required value="35"' in page
    outcome = page[page.index(f'action="/forecasts/{fid}/resolve"') :]
    assert '<option value="Alibaba Qwen">Alibaba Qwen</option>' in outcome


# --- bad input: the CLI's line, nothing changed --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "cli_args"),
    [
        ({"forecast": "150%"}, ["-p", "150%"]),
        ({"due": "someday"}, ["-p", "70%", "--due", "someday"]),
        (
            {"kind": "numeric", "range": "0..34", "forecast": "10%=4,50%=3,90%=15"},
            ["--numeric", "0..34", "--quantiles", "10%=4,50%=3,90%=15"],
        ),
        (
            {"kind": "date", "range": "2035..2026", "forecast": "50%=2030"},
            ["--date", "2035..2026", "--quantiles", "50%=2030"],
        ),
        (
            {"kind": "choice", "options": "A,B", "forecast": "30,30"},
            ["--options", "A,B", "-p", "30,30"],
        ),
        ({"kind": "choice", "options": "A,B", "forecast": "50,50", "checks": "deadline"},
         ["--options", "A,B", "-p", "50,50", "--check", "deadline"]),
        ({"checks": "page:url=ftp://x.example/,contains=x"},
         ["-p", "70%", "--check", "page:url=ftp://x.example/,contains=x"]),
    ],
)  # fmt: skip
def test_pages_new_forecast_refuses_bad_input_with_the_cli_line(
    fields: dict[str, str],
    cli_args: list[str],
    mei: Browser,
    cli: Callable[..., Any],
    counts: Callable[[], dict[str, int]],
) -> None:
    before = counts()
    data = {"title": "T", "due": "2030-12-31", "criteria": "C", **NEW["binary"], **fields}
    response = mei.post("/forecasts/new", data)
    assert response.status_code == 422
    args = ["add", "T", "--criteria", "C", *cli_args]
    if "--due" not in cli_args:
        args += ["--due", "2030-12-31"]
    assert _error(response.text) == _cli_error(cli(*args))
    assert counts() == before
    # the form comes back with what was typed
    assert 'value="T"' in response.text
    for value in fields.values():
        assert html.escape(value) in response.text


@pytest.mark.parametrize("kind", list(NEW))
def test_pages_update_refuses_bad_input_with_the_cli_line(
    kind: str, mei: Browser, cli: Callable[..., Any], counts: Callable[[], dict[str, int]]
) -> None:
    fid = mei.add(kind)
    bad = {
        "binary": ({"forecast": "1.5"}, ["-p", "1.5"]),
        "numeric": ({"forecast": "10%=4,50%=3,90%=15"}, ["--quantiles", "10%=4,50%=3,90%=15"]),
        "date": ({"forecast": "2028"}, ["--quantiles", "2028"]),
        "choice": ({"option0": "50", "option1": "50", "option2": "50"}, ["-p", "50,50,50"]),
    }[kind]
    before = counts()
    response = mei.post(f"/forecasts/{fid}/estimate", bad[0])
    assert response.status_code == 422
    line = _cli_error(cli("update", str(fid), *bad[1]))
    assert _error(response.text) == line
    assert counts() == before


def test_pages_resolve_annul_reopen_refuse_bad_input(
    mei: Browser, cli: Callable[..., Any], counts: Callable[[], dict[str, int]]
) -> None:
    fid = mei.add("numeric")
    before = counts()
    response = mei.post(f"/forecasts/{fid}/resolve", {"outcome": "99"})  # beyond the closed bound?
    if response.status_code == 303:  # (the upper bound is open: 99 is a possible outcome)
        mei.post(f"/forecasts/{fid}/reopen", {"note": "undo"})
        before = counts()
    response = mei.post(f"/forecasts/{fid}/resolve", {"outcome": "-3"})
    assert response.status_code == 422
    assert _error(response.text) == _cli_error(cli("resolve", str(fid), "--", "-3"))
    response = mei.post(f"/forecasts/{fid}/annul", {"note": "  "})
    assert (
        response.status_code == 422
        and _error(response.text) == "Error: note: missing, expected a note saying why"
    )
    assert counts() == before
    # a state the forecast forbids: reopening an open forecast (409, the CLI's line)
    response = mei.post(f"/forecasts/{fid}/reopen", {"note": "why"}, page=f"/forecasts/{fid}")
    assert response.status_code in (403, 409)


def test_pages_closing_forms(mei: Browser) -> None:
    fid = mei.add("binary")
    assert mei.post(f"/forecasts/{fid}/annul", {"note": "moot"}).status_code == 303
    page = mei.get(f"/forecasts/{fid}")
    assert "annulled" in page and "moot" in page
    response = mei.post(f"/forecasts/{fid}/annul", {"note": "again"})
    assert response.status_code == 409 and "already annulled" in (_error(response.text) or "")
    assert mei.post(f"/forecasts/{fid}/reopen", {"note": "not moot"}).status_code == 303
    assert mei.post(f"/forecasts/{fid}/withdraw", {"note": "a test"}).status_code == 303
    assert "withdrawn" in mei.get(f"/forecasts/{fid}")
    assert f'href="/forecasts/{fid}"' not in mei.get("/forecasts?status=all")
    assert f'href="/forecasts/{fid}"' in mei.get("/forecasts?status=withdrawn")


# --- CSRF, roles, ownership ----------------------------------------------------------------------


def test_pages_forms_refuse_without_the_csrf_token(
    mei: Browser, counts: Callable[[], dict[str, int]]
) -> None:
    fid = mei.add("binary")
    before = counts()
    for action, data in [
        ("/forecasts/new", {"title": "T", "forecast": "60%", "due": "2030", "criteria": "C"}),
        (f"/forecasts/{fid}/estimate", {"forecast": "10%"}),
        (f"/forecasts/{fid}/resolve", {"outcome": "yes"}),
        (f"/forecasts/{fid}/annul", {"note": "x"}),
    ]:
        assert mei.client.post(action, data=data).status_code == 403
        assert mei.client.post(action, data={**data, "csrf_token": "forged"}).status_code == 403
    assert counts() == before


def test_pages_owner_forms_for_owner_and_admin_only(
    app: FastAPI, people: dict[str, str], mei: Browser, bob: Browser
) -> None:
    fid = mei.add("binary")
    ada = Browser(app, "ada", people["ada"])
    val = Browser(app, "val", people["val"])
    forms = ("resolve", "annul", "withdraw")
    for who, owner in ((mei, True), (ada, True), (bob, False), (val, False)):
        page = who.get(f"/forecasts/{fid}")
        for form in forms:
            assert (f'action="/forecasts/{fid}/{form}"' in page) is owner, (who.name, form)
    assert f'action="/forecasts/{fid}/estimate"' not in val.get(f"/forecasts/{fid}")
    token = csrf_of(bob.get(f"/forecasts/{fid}"))
    refused = bob.client.post(
        f"/forecasts/{fid}/resolve", data={"csrf_token": token, "outcome": "yes"}
    )
    assert refused.status_code == 403
    token = csrf_of(val.get("/"))
    assert val.client.post(f"/forecasts/{fid}/estimate",
                           data={"csrf_token": token, "forecast": "50%"}).status_code == 403  # fmt: skip
    val.get("/forecasts/new", status=403)
    # an admin settles anyone's forecast, in their own name
    assert ada.post(f"/forecasts/{fid}/resolve", {"outcome": "no"}).status_code == 303
    assert "Resolved" in mei.get(f"/forecasts/{fid}") and "by ada" in mei.get(f"/forecasts/{fid}")


def test_pages_need_sign_in(client: TestClient, people: dict[str, str]) -> None:
    for path in ("/", "/forecasts", "/forecasts/new", "/forecasts/1"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_pages_unknown_forecast_is_404(mei: Browser) -> None:
    assert "expected the id of an existing forecast" in mei.get("/forecasts/999", status=404)


# --- blind questions -----------------------------------------------------------------------------


def test_pages_blind_hides_others_until_one_forecasts(mei: Browser, bob: Browser) -> None:
    fid = mei.add("binary", blind="1", forecast="83%")
    page = bob.get(f"/forecasts/{fid}")
    assert "blind" in page and "83%" not in page and "<polyline" not in page
    assert "83%" not in bob.get("/forecasts?status=open")
    assert "hidden (blind)" in bob.get("/forecasts?status=open")
    assert bob.post(f"/forecasts/{fid}/estimate", {"forecast": "40%"}).status_code == 303
    page = bob.get(f"/forecasts/{fid}")
    assert "83%" in page and "40%" in page
    assert "40%" in mei.get(f"/forecasts/{fid}")  # mei has forecast: she sees bob's


# --- proposals -----------------------------------------------------------------------------------


def _proposal(engine: Engine, fid: int, verdict: str = "yes") -> int:
    with write_session(engine) as session:
        check = Check(forecast_id=fid, kind="page", params={"url": "https://example.org/"},
                      created_at=datetime(2026, 1, 2), next_check_at=datetime(2026, 1, 3))  # fmt: skip
        session.add(check)
        session.flush()
        evidence = Evidence(
            check_id=check.id, forecast_id=fid, checked_at=datetime(2026, 3, 1, 10), kind="page",
            resolver_version="1", url="https://example.org/" + XSS, http_status=200,
            sha256="ab" * 32, excerpt="The list " + XSS, value=None, verdict=verdict,
        )  # fmt: skip
        session.add(evidence)
        session.flush()
        proposal = Proposal(forecast_id=fid, check_id=check.id, evidence_id=evidence.id,
                            kind="resolve", verdict=verdict, created_at=datetime(2026, 3, 1, 10))  # fmt: skip
        session.add(proposal)
        session.flush()
        return int(proposal.id)


def test_pages_proposals_confirm_and_dispute(
    mei: Browser, bob: Browser, engine: Engine, cli: Callable[..., Any]
) -> None:
    fid = mei.add("binary")
    pid = _proposal(engine, fid)
    home = mei.get("/")
    assert f'href="/forecasts/{fid}#proposals"' in home and "resolve YES" in home
    page = mei.get(f"/forecasts/{fid}")
    assert f'action="/proposals/{pid}/confirm"' in page and "sha256 abababab" in page
    assert f'action="/proposals/{pid}/confirm"' not in bob.get(f"/forecasts/{fid}")
    token = csrf_of(bob.get(f"/forecasts/{fid}"))
    assert (
        bob.client.post(f"/proposals/{pid}/confirm", data={"csrf_token": token}).status_code == 403
    )
    response = mei.post(f"/proposals/{pid}/dispute", {"note": ""}, page=f"/forecasts/{fid}")
    assert response.status_code == 422
    assert _error(response.text) == _cli_error(cli("dispute", str(fid), "--note", ""))
    assert (
        mei.post(
            f"/proposals/{pid}/dispute", {"note": "wrong page"}, page=f"/forecasts/{fid}"
        ).status_code
        == 303
    )
    assert "disputed by mei: wrong page" in mei.get(f"/forecasts/{fid}")
    other = _proposal(engine, fid, "no")
    response = mei.post(f"/proposals/{other}/confirm", {}, page=f"/forecasts/{fid}")
    assert response.status_code == 303
    assert "resolved: NO" in mei.get(f"/forecasts/{fid}")


# --- search, filters, pagination -----------------------------------------------------------------


def test_pages_search_filters_and_pages(mei: Browser, bob: Browser, engine: Engine) -> None:
    with write_session(engine) as session:
        for i in range(30):
            store.add_forecast(session, title=f"Grid {i:02d}", criteria="c", author="bob",
                               due=datetime(2031, 1, 1 + i % 28), probability=0.5,
                               tags=["grid"] if i % 2 else [])  # fmt: skip
    mei.add("binary", title="Beijing hubs", tags="china")
    first = mei.get("/forecasts?q=grid")
    assert "31 forecasts" not in first and "30 forecasts, page 1 of 2" in first
    assert len(re.findall(r'href="/forecasts/\d', first)) == 25 and 'rel="next"' in first
    second = mei.get("/forecasts?q=grid&page=2")
    assert len(re.findall(r'href="/forecasts/\d', second)) == 5 and 'rel="prev"' in second
    assert "15 forecasts" in mei.get("/forecasts?tag=grid")
    assert "1 forecast," not in mei.get("/forecasts?tag=china") and "Beijing hubs" in mei.get(
        "/forecasts?tag=china"
    )
    by_mei = mei.get("/forecasts?by=mei&status=all")
    assert "Beijing hubs" in by_mei and "Grid" not in by_mei
    bad = mei.client.get("/forecasts?status=sideways")
    assert bad.status_code == 422 and _error(bad.text) == (
        "Error: status: got 'sideways', expected one of open, due, overdue, resolved, annulled, "
        "withdrawn, all"
    )


def test_pages_home_sections(mei: Browser, engine: Engine) -> None:
    with freeze_time("2026-06-01 12:00:00"):
        soon = mei.add("binary", title="Soon", due="2026-06-05")
        later = mei.add("numeric", title="Later")
    with write_session(engine) as session:
        store.add_forecast(session, title="Late", criteria="c", author="bob",
                           due=datetime(2026, 1, 1), probability=0.4, allow_past_due=True,
                           created_at=datetime(2025, 1, 1))  # fmt: skip
    with freeze_time("2026-06-02 12:00:00"):
        home = mei.get("/")
    due = home[home.index('id="due"') : home.index('id="overdue"')]
    overdue = home[home.index('id="overdue"') : home.index('id="proposals"')]
    mine = home[home.index('id="mine"') :]
    assert f'href="/forecasts/{soon}"' in due and "due in 3 days" in due
    assert "Late" in overdue and "overdue by" in overdue
    assert f'href="/forecasts/{later}"' in mine and f'href="/forecasts/{soon}"' in mine


# --- escaping ------------------------------------------------------------------------------------


def test_pages_escape_what_people_typed(mei: Browser, bob: Browser, engine: Engine) -> None:
    binary = mei.add("binary", title=XSS, criteria=XSS, note=XSS, source=XSS)
    choice = mei.add("choice", title="Options", options=f"{XSS},Other", forecast="50,50")
    assert (
        bob.post(f"/forecasts/{binary}/estimate", {"forecast": "30%", "note": XSS}).status_code
        == 303
    )
    _proposal(engine, binary)
    pages = [
        mei.get(f"/forecasts/{binary}"),
        mei.get(f"/forecasts/{choice}"),
        mei.get("/"),
        mei.get("/forecasts?status=all"),
        mei.get("/forecasts?q=" + XSS),
    ]
    bad = mei.post("/forecasts/new", {"title": XSS, "forecast": XSS, "due": XSS, "criteria": XSS,
                                      **{k: v for k, v in NEW["binary"].items() if k != "forecast"}})  # fmt: skip
    pages.append(bad.text)
    for page in pages:
        assert "<script>" not in page and "<img src=x" not in page
    assert str(escape(XSS)) in pages[0]
    assert (
        'href="https://example.org/&lt;script' in pages[0]
        or "https://example.org/&lt;script" in pages[0]
    )


# --- in a real browser ---------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
_NO_BROWSER = (
    "headless browser test skipped: /usr/bin/chromium is absent (apt-get install -y chromium)"
    if not CHROMIUM.exists()
    else "headless browser test skipped: the playwright package is absent (pip install playwright)"
    if importlib.util.find_spec("playwright") is None
    else None
)
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)"> & "co"'
#: What the layout check finds wrong on a page: text beyond the viewport, SVG labels that
#: overlap or are smaller than 11 px, a page wider than the screen.
_LAYOUT_JS = """() => {
  const out = [], vw = document.documentElement.clientWidth;
  for (const e of document.querySelectorAll('main *')) {
    if (e.children.length || !e.textContent.trim()) continue;
    const r = e.getBoundingClientRect();
    if (r.width && r.right > vw + 1) out.push('clipped: ' + e.textContent.slice(0, 40));
  }
  const texts = [...document.querySelectorAll('svg text')].filter(t => t.getBoundingClientRect().width);
  texts.forEach((t, i) => {
    const a = t.getBoundingClientRect();
    if (a.height < 11) out.push('small: ' + t.textContent + ' ' + a.height.toFixed(1));
    for (const u of texts.slice(i + 1)) {
      const b = u.getBoundingClientRect();
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
        out.push('overlap: ' + t.textContent + ' / ' + u.textContent);
    }
  });
  if (document.documentElement.scrollWidth > vw + 1) out.push('wider than the screen');
  return out;
}"""


@pytest.mark.skipif(_NO_BROWSER is not None, reason=_NO_BROWSER or "")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pages_in_chromium_at_phone_and_desktop_widths(app: FastAPI) -> None:
    """Each type added and updated through the forms in Chromium; every page at 390 and 1280 px
    has no overlapping, tiny or clipped text, no console error (a CSP violation is one) and runs
    nothing a title carried."""
    from playwright.sync_api import sync_playwright

    password = "correct horse battery staple"
    for name in ("mei", "bob"):
        add_user(app, name, "member", password=password)
    console: list[str] = []
    with live_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])

        def open_as(name: str, width: int) -> Any:
            page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
            page.on(
                "console",
                lambda m: (
                    console.append(f"{m.text} {m.location.get('url')}")
                    if m.type == "error"
                    else None
                ),
            )
            page.on("pageerror", lambda e: console.append(str(e)))
            page.on("dialog", lambda d: console.append("dialog: " + d.message))
            page.goto(base + "/login")
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", password)
            page.click("main button[type=submit]")
            return page

        mei = open_as("mei", 1280)
        ids = []
        for kind, fields in NEW.items():
            mei.goto(base + "/forecasts/new")
            mei.fill("input[name=title]", HOSTILE if kind == "binary" else f"A {kind} question")
            mei.fill("input[name=forecast]", fields["forecast"])
            mei.fill("input[name=due]", "2030-12-31")
            mei.fill("textarea[name=criteria]", "Counted in the official list as of the due date.")
            mei.check(f"input[name=kind][value={kind}]")
            for field in ("range", "options"):
                if field in fields:
                    mei.fill(f"input[name={field}]", fields[field])
            if "open" in fields:
                mei.select_option("select[name=open]", fields["open"])
            mei.fill("input[name=tags]", "china, semiconductors-and-export-controls")
            mei.click("form.new-forecast > button")
            ids.append(int(mei.url.rsplit("/", 1)[1]))
        bob = open_as("bob", 390)
        for fid, kind in zip(ids, NEW, strict=True):
            bob.goto(f"{base}/forecasts/{fid}")
            for field, value in UPDATE[kind].items():
                bob.fill(f"input[name={field}]", value)
            bob.click("#estimate button[type=submit]")
            assert (
                UPDATED[kind]
                in bob.locator("#others").inner_text() + bob.locator("#estimate").inner_text()
            )
        for width in (390, 1280):
            page = open_as("mei", width)
            for path in ["/", "/forecasts", "/forecasts/new", *[f"/forecasts/{i}" for i in ids]]:
                page.goto(base + path)
                assert page.evaluate(_LAYOUT_JS) == [], (width, path)
            page.goto(f"{base}/forecasts/{ids[0]}")
            assert page.locator("h1").inner_text() == HOSTILE
            assert page.title() != "pwned" and page.locator("main script").count() == 0
        browser.close()
    assert console == []
