"""The service in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium, launched
with ``executable_path``; nothing downloaded) against one live uvicorn on a SQLite file.

- A member signs in through the login form, adds a forecast of every type (binary, numeric, date,
  choice) through the new-forecast form, updates each through its one-field form, confirms a
  proposal that a check run made (a page served on loopback, fetched by the runner the daemon
  runs, loopback allowed as the resolver tests allow it), resolves, and opens the track record
  and team pages.
- XSS: payloads (``<script>``, ``<img onerror>``, ``"><svg onload>``, ``javascript:`` URLs) in
  every field a person types (title, criteria, notes, tags, option names, source, evidence URL,
  resolution note, a user's name) are shown as text on every page: no dialog, no console error,
  ``window.__xss`` stays undefined, no Content-Security-Policy violation, no ``on*`` attribute and
  no ``javascript:`` link in the document, nothing fetched from elsewhere.
- Every page at a phone's width (390x844) and a desktop's (1280x800): no sideways scrolling, no
  two text boxes overlapping, no text box clipped (``scrollWidth > clientWidth`` on a box that
  does not scroll); screenshots are saved under the test's tmp dir.

One browser for the module; each width keeps one signed-in page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from predictions import store
from predictions.inputs import read_forecast, read_question
from predictions.models import Check, Evidence, Forecast, Proposal
from resolvers.http import HttpSettings
from resolvers.sweep import SweepSettings, check_forecast
from service.app import Settings, create_app
from tests.reports.test_report_html import CHROMIUM, browser_test
from tests.resolvers.loopback import Loopback
from tests.service.support import add_user, live_server

pytestmark = browser_test

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
#: Each payload would set window.__xss if it ever ran.
XSS = (
    "<script>window.__xss='script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    '"><svg onload="window.__xss=\'svg\'">',
    "javascript:window.__xss='js'",
)
HOSTILE = " ".join(XSS)
#: A member whose name is a payload (names are single-line text: anything printable).
HOSTILE_NAME = "bo<img src=x onerror=window.__xss='name'>"
JS_URL = "javascript:window.__xss='url'"
JS_TAG = "javascript:window.__xss"  # a valid tag (letters, '.', ':', '_')
OPTIONS = (
    "Alpha <script>window.__xss='o1'</script>,Beta <img src=x onerror=window.__xss='o2'>,Other"
)
LOOPBACK = SweepSettings(
    http=HttpSettings(timeout=5, allowed_networks=("127.0.0.0/8",), retries=0), concurrency=1
)
DUE = "2031-06-30"


@dataclass
class Site:
    """The live server, its app, and the people who use it."""

    app: FastAPI
    base: str
    web: Loopback
    passwords: dict[str, str]
    pages: dict[str, Any] = field(default_factory=dict)  # by width name: the signed-in page
    added: dict[str, int] = field(default_factory=dict)  # the journey's forecasts by kind

    def forecast_ids(self) -> list[int]:
        with self.app.state.store.read() as s:
            return list(s.scalars(select(Forecast.id).order_by(Forecast.id)))


def _seed(app: FastAPI) -> None:
    """Forecasts of every type with a payload in every field a person types, estimates by a
    member named with a payload, a check with its evidence and a pending proposal, and resolved
    forecasts enough for the track record and the team ranking."""
    now = datetime.now().replace(microsecond=0)
    past = now - timedelta(days=200)
    with app.state.store.write() as s:
        kinds = {
            "binary": (None, "30%", None),
            "numeric": (read_question("0..100", None, None, "upper"), None, "10%=4,50%=8,90%=15"),
            "date": (
                read_question(None, "2026-01-01..2035-12-31", None),
                None,
                "25%=2027-06,50%=2028-06,75%=2030",
            ),
            "choice": (read_question(None, None, OPTIONS), "50,30,20", None),
        }
        for kind, (question, p, q) in kinds.items():
            given = read_forecast(question, p, quantiles=q)
            fields: dict[str, Any] = (
                {"question": question, "values": given} if question else {"probability": given}
            )
            f = store.add_forecast(
                s, title=f"Seeded {kind} {HOSTILE}", criteria=f"Resolves as typed: {HOSTILE}",
                due=datetime(2031, 1, 1), author="mei", tags=["seeded", JS_TAG, "blind"],
                source=JS_URL, note=HOSTILE, created_at=past, **fields,
            )  # fmt: skip
            store.add_estimate(s, f, "mei", given, note=HOSTILE, made_at=past + timedelta(days=1))
            store.add_estimate(s, f, HOSTILE_NAME, given, note=HOSTILE,
                               made_at=past + timedelta(days=2))  # fmt: skip
            store.amend(s, f.id, "title", f"Seeded {kind} {HOSTILE} (amended)", by="mei",
                        note=HOSTILE)  # fmt: skip
            check = Check(forecast_id=f.id, kind="page",
                          params={"url": JS_URL, "contains": HOSTILE},
                          created_at=past, next_check_at=now + timedelta(days=1))  # fmt: skip
            s.add(check)
            s.flush()
            evidence = Evidence(
                check_id=check.id, forecast_id=f.id, checked_at=past + timedelta(days=3),
                kind="page", resolver_version="1", url=JS_URL, http_status=200, sha256="ab" * 32,
                excerpt=HOSTILE, value=HOSTILE, verdict="yes", error=HOSTILE,
            )  # fmt: skip
            s.add(evidence)
            s.flush()
            s.add(Proposal(forecast_id=f.id, check_id=check.id, evidence_id=evidence.id,
                           kind="resolve", verdict="yes", created_at=past + timedelta(days=3)))  # fmt: skip
        for i in range(8):  # resolved: a track record, a team to rank
            f = store.add_forecast(
                s, title=f"Resolved {i} {HOSTILE}", criteria=HOSTILE, due=now - timedelta(days=5),
                author="mei", probability=0.2 + 0.08 * i, tags=["seeded", JS_TAG],
                created_at=past, allow_past_due=True,
            )  # fmt: skip
            store.add_estimate(s, f, HOSTILE_NAME, 0.9 - 0.1 * i, made_at=past + timedelta(days=1))
            store.add_estimate(s, f, "ana", 0.5, made_at=past + timedelta(days=1))
            store.resolve(s, f.id, i % 2 == 0, by="mei", note=HOSTILE, evidence=JS_URL,
                          at=now - timedelta(days=1))  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("browser") / "tracker.db"
    app = create_app(f"sqlite:///{path}", Settings())
    passwords = {
        "mei": add_user(app, "mei", "member", password="mei's long password"),
        HOSTILE_NAME: add_user(app, HOSTILE_NAME, "member", password="bo's long password"),
    }
    add_user(app, "ana", "member")
    _seed(app)
    with Loopback() as web, live_server(app) as base:
        web.route(
            "/news", "<html><body><p>The standard was published in Beijing.</p></body></html>"
        )
        yield Site(app, base, web, passwords)
    app.state.store.engine.dispose()


# Every Content-Security-Policy violation the page reports, from before its first script.
_WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));
"""


class Tab:
    """A signed-in page at one width, recording dialogs, console errors and every request."""

    def __init__(self, browser: Any, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.context.add_init_script(_WATCH_CSP)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []
        self.broken: list[str] = []  # pages with short words cut over two lines
        self.walked = False
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def _console(self, message: Any) -> None:
        """Errors and warnings; not the browser's note that the page itself came with an error
        status (the 404 and 422 pages are meant)."""
        if message.type not in ("error", "warning"):
            return
        own = message.location.get("url") == self.page.url
        if own and message.text.startswith("Failed to load resource: the server responded"):
            return
        self.console.append(f"{message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def sign_in(self, base: str, name: str, password: str) -> None:
        self.page.goto(base + "/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_url(base + "/")

    def reset(self) -> None:
        self.dialogs.clear()
        self.console.clear()
        self.requests.clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def desktop(browser: Any, site: Site) -> Tab:
    """mei at a desktop's width."""
    tab = Tab(browser, DESKTOP)
    tab.sign_in(site.base, "mei", site.passwords["mei"])
    return tab


@pytest.fixture(scope="module")
def phone(browser: Any, site: Site) -> Tab:
    """The member named with a payload, on a phone."""
    tab = Tab(browser, PHONE)
    tab.sign_in(site.base, HOSTILE_NAME, site.passwords[HOSTILE_NAME])
    return tab


# --- the journey ---------------------------------------------------------------------------------

NEW = {
    "binary": {"forecast": "70%"},
    "numeric": {"forecast": "10%=4,50%=8,90%=15", "range": "0..34", "open": "upper"},
    "date": {"forecast": "25%=2027-06,50%=2028-06,75%=2030", "range": "2026-01-01..2035-12-31"},
    "choice": {"forecast": "35,30,35", "options": OPTIONS},
}
UPDATE = {
    "binary": {"forecast": "65%"},
    "numeric": {"forecast": "10%=5,50%=9,90%=16"},
    "date": {"forecast": "25%=2027-09,50%=2028-09,75%=2030-06"},
    "choice": {"option0": "20", "option1": "50", "option2": "30"},
}
SHOWN_AFTER_UPDATE = {"binary": "65%", "numeric": "50%: 9", "date": "2028-09", "choice": "50%"}


def _add(page: Any, base: str, kind: str, checks: str = "") -> int:
    page.goto(base + "/forecasts/new")
    page.fill("input[name=title]", f"Journey {kind} {HOSTILE}")
    page.fill("input[name=due]", DUE)
    page.fill("textarea[name=criteria]", f"Resolves as the source says. {HOSTILE}")
    page.check(f"input[name=kind][value={kind}]")
    for name, value in NEW[kind].items():
        if name == "open":
            page.select_option("select[name=open]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.fill("input[name=tags]", f"journey, {JS_TAG}")
    page.fill("input[name=source]", JS_URL)
    page.fill("input[name=note]", HOSTILE)
    page.fill("textarea[name=checks]", checks)
    page.click("form.new-forecast > button[type=submit]")
    page.wait_for_url(re.compile(re.escape(base) + r"/forecasts/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_browser_journey_add_update_confirm_resolve_and_the_record(
    site: Site, desktop: Tab
) -> None:
    page, base = desktop.page, site.base
    assert page.locator("header nav").inner_text().count("mei") == 1
    # a tag holding markup is refused with the CLI's line, and the form keeps what was typed
    page.goto(base + "/forecasts/new")
    page.fill("input[name=title]", "Refused")
    page.fill("input[name=forecast]", "70%")
    page.fill("input[name=due]", DUE)
    page.fill("textarea[name=criteria]", "x")
    page.fill("input[name=tags]", "<script>")
    page.click("form.new-forecast > button[type=submit]")
    assert page.locator("p.error").inner_text().startswith("Error: tag: got '<script>'")
    assert page.input_value("input[name=tags]") == "<script>"
    # every type through the form
    for kind in NEW:
        fid = _add(page, base, kind)
        site.added[kind] = fid
        assert page.locator("h1").inner_text() == f"Journey {kind} {HOSTILE}"
        assert HOSTILE in page.locator("#criteria").inner_text()
    # update each through its one-field form
    for kind, fields in UPDATE.items():
        page.goto(f"{base}/forecasts/{site.added[kind]}")
        for name, value in fields.items():
            page.fill(f"form[action$='/estimate'] input[name={name}]", value)
        page.fill("form[action$='/estimate'] input[name=note]", f"update {HOSTILE}")
        page.click("form[action$='/estimate'] button[type=submit]")
        page.wait_for_url(re.compile(r".*#estimate$"))
        assert SHOWN_AFTER_UPDATE[kind] in page.locator("#estimate").inner_text(), kind
        page.locator("#history details summary").click()
        assert f"update {HOSTILE}" in page.locator("#history").inner_text()
    # a check run proposes YES from a page on loopback; reviewed and confirmed in the browser
    checked = _add(page, base, "binary", f"page:url={site.web.url}/news,contains=Beijing")
    report = check_forecast(site.app.state.store.engine, checked, settings=LOOPBACK)
    assert [o.action for o in report.outcomes] == ["proposed YES"], report.record()
    assert site.web.hits["/news"] == 1
    page.goto(base + "/")
    link = page.locator(f"#proposals a[href='/forecasts/{checked}#proposals']")
    item = page.locator(
        "#proposals li", has=page.locator(f"a[href='/forecasts/{checked}#proposals']")
    )
    assert "resolve YES" in item.inner_text()
    link.click()
    proposal = page.locator("#proposals .proposal")
    assert "Beijing" in proposal.inner_text()
    proposal.locator("form[action$='/confirm'] input[name=note]").fill(f"seen {HOSTILE}")
    with page.expect_navigation():
        proposal.locator("form[action$='/confirm'] button").click()
    assert page.locator(".meta .status").inner_text() == "resolved: YES"
    assert "confirmed by mei" in page.locator("#proposals").inner_text()
    # resolve a numeric one and a choice one through the owner's form
    page.goto(f"{base}/forecasts/{site.added['numeric']}")
    page.fill("form[action$='/resolve'] input[name=outcome]", "11")
    page.fill("form[action$='/resolve'] input[name=note]", HOSTILE)
    page.fill("form[action$='/resolve'] input[name=evidence]", JS_URL)
    with page.expect_navigation():
        page.click("form[action$='/resolve'] button[type=submit]")
    assert page.locator(".meta .status").inner_text() == "resolved: 11"
    assert JS_URL in page.locator("#manage").inner_text()
    page.goto(f"{base}/forecasts/{site.added['choice']}")
    page.select_option("form[action$='/resolve'] select[name=outcome]", index=1)
    with page.expect_navigation():
        page.click("form[action$='/resolve'] button[type=submit]")
    assert page.locator(".meta .status").inner_text().startswith("resolved: Beta <img")
    # the track record and the team
    page.click("header nav a[href='/record']")
    page.wait_for_url(base + "/record")
    assert page.locator("h1").count() == 1 and page.locator("svg").count() > 0
    page.goto(base + "/team")
    team = page.locator("main").inner_text()
    assert "mei" in team and HOSTILE_NAME in team
    page.goto(base + "/record/team")
    assert page.locator("svg").count() > 0
    page.goto(base + "/record/forecasters/mei")
    assert "Forecaster: mei. Questions: " in page.locator(".report .meta").first.inner_text()
    assert desktop.dialogs == [] and desktop.console == []


# --- every page: nothing fires, nothing overlaps or is clipped -------------------------------------


def _pages(site: Site) -> list[str]:
    fixed = [
        "/", "/forecasts", "/forecasts?status=all", "/forecasts?status=resolved&tag=seeded",
        "/forecasts/new", "/record", "/record/team", "/record/team?group_by=forecaster", "/team",
        "/record/forecasters/" + quote(HOSTILE_NAME, safe=""), "/record/forecasters/mei",
        "/record/tags/" + quote(JS_TAG, safe=""), "/settings/tokens", "/settings/password",
        "/login", "/no/such/page", "/forecasts/999999",
        # what a link can make a page say back: the query, the path, the sign-in's next
        "/forecasts?status=all&q=" + quote(HOSTILE), "/forecasts?tag=" + quote(XSS[1]),
        "/forecasts?by=" + quote(HOSTILE_NAME), "/forecasts?status=" + quote(XSS[2]),
        "/record?since=" + quote(XSS[0]) + "&group_by=" + quote(XSS[2]),
        "/login?next=" + quote('/"><img src=x onerror="window.__xss=1">'),
        "/no/such/" + quote(XSS[0]),
    ]  # fmt: skip
    return fixed + [f"/forecasts/{fid}" for fid in site.forecast_ids()]


# What ran or tried to: the probe, CSP reports, event-handler attributes, javascript: links.
_XSS_JS = """() => ({
  xss: typeof window.__xss === 'undefined' ? null : String(window.__xss),
  csp: window.__csp || ['the CSP watcher did not run'],
  handlers: [...document.querySelectorAll('*')].flatMap(
    e => [...e.attributes].filter(a => /^on/i.test(a.name)).map(a => e.tagName + ' ' + a.name)),
  js_links: [...document.querySelectorAll('[href],[src],[action],[formaction]')].flatMap(
    e => ['href', 'src', 'action', 'formaction'].map(n => e.getAttribute(n) || '')
      .filter(v => /^\\s*javascript:/i.test(v))),
  scripts: document.querySelectorAll('script').length,
  text: document.body.innerText,
})"""

# Text boxes: each text node's line boxes (SVG: each <text>); which overlap another; which
# boxes are narrower than their content without scrolling; which short words (12 characters at
# most: a date, "(propose)") are cut over two lines; whether the page scrolls sideways.
_LAYOUT_JS = r"""() => {
  const SHORT = 12;
  const boxes = [];
  const clipped = [];
  const broken = [];
  const visible = r => r.width > 0.5 && r.height > 0.5;
  for (const el of document.body.querySelectorAll('*')) {
    if (!el.checkVisibility({visibilityProperty: true})) continue;  // a closed <details> too
    const inSvg = el.closest('svg');
    if (inSvg && el.tagName.toLowerCase() !== 'text') continue;
    const nodes = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim());
    if (!nodes.length) continue;
    if (inSvg) {
      const r = el.getBoundingClientRect();
      if (visible(r)) boxes.push({text: el.textContent.trim(), r, el});
      continue;
    }
    for (const n of nodes) {
      const range = document.createRange();
      range.selectNodeContents(n);
      for (const r of range.getClientRects()) if (visible(r)) boxes.push({text: n.textContent.trim(), r, el});
      for (const m of n.textContent.matchAll(/\S+/g)) {  // a short word split over two lines
        if (m[0].length > SHORT || !/^[\w%(),.:;-]+$/.test(m[0])) continue;
        const word = document.createRange();
        word.setStart(n, m.index);
        word.setEnd(n, m.index + m[0].length);
        const lines = new Set([...word.getClientRects()].filter(visible).map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
    const style = getComputedStyle(el);
    const scrolls = ['auto', 'scroll'].includes(style.overflowX);
    const field = ['INPUT', 'TEXTAREA', 'SELECT', 'OPTION', 'BUTTON'].includes(el.tagName);
    if (!scrolls && !field && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      clipped.push(`${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.trim().slice(0, 60)}`
        + ` (${el.scrollWidth} > ${el.clientWidth})`);
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i].r, b = boxes[j].r;
    if (boxes[i].el.contains(boxes[j].el) && boxes[i].el !== boxes[j].el && a === b) continue;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) overlaps.push(`"${boxes[i].text.slice(0, 40)}" / "${boxes[j].text.slice(0, 40)}"`);
  }
  const doc = document.documentElement;
  return {overlaps, clipped, broken, sideways: doc.scrollWidth > doc.clientWidth + 1
    ? `${doc.scrollWidth} > ${doc.clientWidth}` : null, boxes: boxes.length};
}"""


def _inspect(tab: Tab, base: str, path: str, shots: Path, name: str) -> list[str]:
    """Open ``path``; every problem found on it, as lines."""
    tab.reset()
    tab.page.goto(base + path)
    tab.page.wait_for_load_state("load")
    problems = []
    facts = tab.page.evaluate(_XSS_JS)
    layout = tab.page.evaluate(_LAYOUT_JS)
    tab.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    for what, found in (
        ("window.__xss set", facts["xss"]),
        ("CSP violations", facts["csp"]),
        ("event-handler attributes", facts["handlers"]),
        ("javascript: links", facts["js_links"]),
        ("script elements", facts["scripts"]),
        ("dialogs", tab.dialogs),
        ("console errors", tab.console),
        ("requests elsewhere", [u for u in tab.requests if not u.startswith(base + "/")]),
        ("overlapping text", layout["overlaps"]),
        ("clipped text", layout["clipped"]),
        ("scrolls sideways", layout["sideways"]),
    ):
        if found:
            problems.append(f"{path}: {what}: {found}")
    if layout["broken"]:
        tab.broken.append(f"{path}: {sorted(set(layout['broken']))}")
    if layout["boxes"] < 5:
        problems.append(f"{path}: only {layout['boxes']} text boxes: the page did not render")
    return problems


def _check_every_page(tab: Tab, site: Site, shots: Path, width: str) -> None:
    problems = []
    hostile_seen = 0
    for i, path in enumerate(_pages(site)):
        problems += _inspect(tab, site.base, path, shots, f"{width}-{i:02d}")
        hostile_seen += HOSTILE in tab.page.locator("body").inner_text()
    tab.walked = True
    assert not problems, "\n".join(problems)
    assert hostile_seen >= 8  # the payloads are there, as text
    assert len(list(shots.glob(f"{width}-*.png"))) == len(_pages(site))


def test_browser_every_page_at_desktop_width(site: Site, desktop: Tab, tmp_path: Path) -> None:
    _check_every_page(desktop, site, tmp_path, "desktop")


def test_browser_every_page_at_phone_width(site: Site, phone: Tab, tmp_path: Path) -> None:
    """Signed in as the member whose name is a payload: their name is in the header too."""
    phone.page.goto(site.base + "/")
    assert HOSTILE_NAME in phone.page.locator("header nav").inner_text()
    _check_every_page(phone, site, tmp_path, "phone")


@pytest.mark.xfail(
    reason="finding for the pages (W3): table cells inherit main's overflow-wrap: anywhere, so "
    "a table with a long cell squeezes its short columns and cuts dates, ids and '(propose)' "
    "over two lines",
    strict=False,
)
def test_browser_short_words_stay_whole(desktop: Tab, phone: Tab) -> None:
    """No date, id or short word (12 characters at most) is cut over two lines, at either
    width (what the two page walks above found; run them first)."""
    if not desktop.broken and not phone.broken and not desktop.walked:
        pytest.skip("the page walks did not run")
    assert not desktop.broken + phone.broken, "\n".join(desktop.broken + phone.broken)


def test_browser_the_csp_blocks_an_injected_script_and_is_heard(site: Site, desktop: Tab) -> None:
    """Under the served policy an inline script never runs, and the violation watcher the page
    checks rely on hears it (so "no CSP violation" above means none happened)."""
    desktop.reset()
    desktop.page.goto(site.base + "/forecasts")
    desktop.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = \"window.__xss = 'injected'\"; document.body.append(s); }"
    )
    desktop.page.wait_for_function("window.__csp.length > 0")
    facts = desktop.page.evaluate(_XSS_JS)
    assert facts["xss"] is None
    assert any(v.startswith("script-src-elem inline") for v in facts["csp"]), facts["csp"]


def test_browser_the_checks_catch_what_they_look_for(browser: Any) -> None:
    """The probes are real: a page without the CSP whose markup runs a payload, overlaps two
    texts, clips one and scrolls sideways is caught on every count."""
    tab = Tab(browser, PHONE)
    try:
        tab.page.set_content(
            "<p>plain</p><p>text</p><p>boxes</p>"
            "<div id=a>first words</div><div id=b>second words</div><p class=c>clipped text "
            "that is long</p><div class=w>wide</div><img src=x onerror=\"window.__xss='img'\">"
            "<style>#b{margin-top:-1.2em} .c{width:3em;overflow:hidden;white-space:nowrap}"
            ".w{width:2000px}</style>"
        )
        tab.page.wait_for_function("window.__xss !== undefined")
        facts = tab.page.evaluate(_XSS_JS)
        layout = tab.page.evaluate(_LAYOUT_JS)
        assert facts["xss"] == "img" and facts["handlers"] == ["IMG onerror"]
        assert any("first words" in o for o in layout["overlaps"]), layout
        assert any("clipped text" in c for c in layout["clipped"]), layout
        assert layout["sideways"] is not None
    finally:
        tab.context.close()
