"""The dashboard page in a real browser: Debian Chromium driven by Playwright.

The shop runs under uvicorn with an admin and a read key; its traffic includes a slow route,
so a latency alert fires. The page must ask for the key, draw what the API holds, sort,
chart one route, resolve the alert (telling a read key it may not), back off on 429, load
nothing from outside the server, and log no error to the console.

Needs ``pip install playwright`` and ``apt-get install chromium`` (no ``playwright install``:
the Debian browser is used). Missing either is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Page,
        Request,
        Route,
        expect,
        sync_playwright,
    )
except ImportError as exc:  # the browser fixture turns this into a failure, not a skip
    PLAYWRIGHT_MISSING: str | None = str(exc)
else:
    PLAYWRIGHT_MISSING = None

ADMIN_KEY = "test-admin-key"
READ_KEY = "test-read-key"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
WAIT_MS = 30_000  # a loaded CI machine: browser, server and collections compete
SLOW_REQUESTS = 12
ROUTES = {
    ("/items/{item_id}", "GET"),
    ("/slow", "GET"),
    ("/categories/{category_id}/items", "GET"),
    ("/orders", "POST"),
    ("/boom", "GET"),
    ("<unmatched>", "GET"),
}
T = TypeVar("T")


# ------------------------------------------------------------------------- the shop


@dataclass(frozen=True)
class Shop:
    url: str
    alert_id: str
    requests_sent: int

    @property
    def ui(self) -> str:
        return self.url + "/monitoring/ui#window=5m"

    def api(self, path: str, key: str = ADMIN_KEY, **params: Any) -> Any:
        return _api(self.url, path, key, **params)


def _api(url: str, path: str, key: str = ADMIN_KEY, **params: Any) -> Any:
    """GET a monitoring API path with a key; the JSON body."""
    response = httpx.get(
        url + "/monitoring" + path,
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the shop did not start:\n{log.read_text(errors='replace')}")


def _send_traffic(url: str) -> int:
    """Requests to six routes (one of them slow, one unmatched); returns how many were sent."""
    sent: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(1, 21):
            assert client.get(f"/items/{i}").status_code == 200
            sent["items"] += 1
        for _ in range(SLOW_REQUESTS):
            assert client.get("/slow", params={"ms": 120}).status_code == 200
            sent["slow"] += 1
        assert client.get("/categories/3/items").status_code == 200
        assert client.post("/orders", json={"item_id": 1, "quantity": 2}).status_code == 201
        # Markup in a URL: the page must show it as text (the route collapses to <unmatched>).
        assert client.get("/no/such/<img src=x onerror=alert(1)>").status_code == 404
        sent["other"] += 3
    # uvicorn closes the connection after an unhandled exception: use a fresh one.
    assert httpx.get(url + "/boom", timeout=10).status_code == 500
    sent["boom"] += 1
    return sum(sent.values())


def _eventually(check: Callable[[], T], timeout_s: float = WAIT_MS / 1000) -> T:
    """Retry ``check`` (which asserts) until it passes or ``timeout_s`` runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _firing_alert(shop_url: str) -> str:
    def check() -> str:
        alerts = _api(shop_url, "/alerts", state="firing")
        slow = [a for a in alerts if a["labels"].get("route") == "/slow"]
        assert slow, f"no latency alert for /slow yet: {alerts}"
        return str(slow[0]["id"])

    return _eventually(check, timeout_s=60)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The instrumented shop with keys configured, its traffic sent, its alert firing."""
    tmp = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SHOP_INSTRUMENT": "1",
        "SHOP_DB": str(tmp / "shop.db"),
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_MONITORING_INTERVAL": "1s",
        "OTEL_MONITORING_LATENCY_THRESHOLD_MS": "50",
        "OTEL_MONITORING_API_KEY": f"{ADMIN_KEY}:admin,{READ_KEY}:read",
    }
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    argv = [uvicorn, "otel_monitoring.demo.shop:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--no-access-log"]
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url + "/healthz", proc, log)
        sent = _send_traffic(url)
        yield Shop(url, _firing_alert(url), sent)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; a missing browser or Playwright fails the test, loudly."""
    if PLAYWRIGHT_MISSING:
        pytest.fail(f"pip install playwright (no 'playwright install'): {PLAYWRIGHT_MISSING}")
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)")
    with sync_playwright() as playwright:
        expect.set_options(timeout=WAIT_MS)
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watch:
    """Console errors, uncaught exceptions and every URL the page requests."""

    FAILED_LOAD = re.compile(
        r"Failed to load resource: the server responded with a status of (\d+)"
    )

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")

    def _request(self, request: Request) -> None:
        if not request.url.startswith((self.origin + "/", "data:")):
            self.foreign.append(request.url)

    def assert_clean(self, *expected_statuses: int) -> None:
        """No console error but Chromium's own notes on API answers the test provoked."""
        api = self.origin + "/monitoring/"
        unexpected = [
            error
            for error in self.errors
            if not (
                (match := self.FAILED_LOAD.match(error))
                and int(match.group(1)) in expected_statuses
                and f"({api}" in error
            )
        ]
        assert unexpected == [], unexpected
        assert self.foreign == [], f"the page loaded something from elsewhere: {self.foreign}"


@dataclass
class Tab:
    page: Page
    watch: Watch


@pytest.fixture
def tab(browser: Browser, shop: Shop) -> Iterator[Tab]:
    """A fresh browser context (empty sessionStorage) at 1280 px wide."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield Tab(page, Watch(page, shop.url))
    context.close()


def _enter_key(page: Page, key: str) -> None:
    expect(page.locator("#key-dialog")).to_be_visible()
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")


def _open_with_key(tab: Tab, shop: Shop, key: str) -> None:
    tab.page.goto(shop.ui)
    _enter_key(tab.page, key)
    expect(tab.page.locator("#status")).to_have_attribute("data-state", "ok")


def _drawn_points(page: Page, chart: str, series: str) -> list[dict[str, float]]:
    """The dots a chart drew for one series: bucket time, value and request count."""
    return page.eval_on_selector_all(
        f'#{chart} g[data-series="{series}"] circle.pt',
        """dots => dots.map(d => ({
            t: Number(d.dataset.t), value: Number(d.dataset.value), count: Number(d.dataset.count)
        }))""",
    )


def _assert_limited(statuses: list[int]) -> None:
    assert 429 in statuses[:], f"no 429 in {len(statuses)} requests yet: {Counter(statuses)}"


# ------------------------------------------------------------------------- tests


def test_page_asks_for_the_key_and_shows_the_traffic(shop: Shop, tab: Tab) -> None:
    page = tab.page
    page.goto(shop.ui)
    _enter_key(page, "not-the-key")
    expect(page.locator("#key-error")).to_contain_text("refused")
    expect(page.locator("#notice")).to_contain_text("refused")
    _enter_key(page, ADMIN_KEY)
    expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    expect(page.locator("#status")).to_have_text(re.compile(r"Updated \d\d:\d\d:\d\d"))
    expect(page.locator("#notice")).to_be_hidden()

    # Health, with the reason naming the slow route; the alert is listed.
    expect(page.locator("#health")).to_have_attribute("data-status", re.compile("degraded|unh"))
    expect(page.locator("#health-reasons")).to_contain_text("/slow")
    expect(page.locator(f'#alerts article[data-alert-id="{shop.alert_id}"]')).to_be_visible()

    # Every route hit is in the table; markup in route names stays text.
    rows = page.locator("#endpoints tbody tr")
    expect(rows).to_have_count(len(ROUTES))
    listed = rows.evaluate_all("rows => rows.map(r => [r.dataset.route, r.dataset.method])")
    assert {tuple(row) for row in listed} == ROUTES
    unmatched = page.locator('#endpoints tr[data-route="<unmatched>"] button.route')
    expect(unmatched).to_have_text("<unmatched>")

    # The throughput chart draws a dot for each bucket that holds requests, and marks the
    # anomalies, as the API says.
    def charted() -> None:
        api = shop.api("/timeseries/throughput", window="5m")
        expected = [{"t": p["t"], "count": p["count"]} for p in api["points"] if p["count"]]
        drawn = [
            {"t": p["t"], "count": p["count"]}
            for p in _drawn_points(page, "chart-throughput", "throughput")
        ]
        assert drawn == expected and sum(p["count"] for p in drawn) == shop.requests_sent
        marks = page.eval_on_selector_all(
            "#chart-throughput g.anomaly", "gs => gs.map(g => Number(g.dataset.anomalyT))"
        )
        assert marks == [a["t"] for a in api["anomalies"]]

    _eventually(charted)
    assert _drawn_points(page, "chart-latency", "latency_p95")

    # The page renders in the browser either way; the README's picture is refreshed only on
    # request (OTEL_MONITORING_SCREENSHOT=1), so test runs do not rewrite a tracked file.
    shot = page.screenshot(full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("OTEL_MONITORING_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)

    # Sorting by p95 puts the route with the highest p95 first, then (ascending) last. That is
    # /slow (120 ms) on a quiet machine; under load a single cold request can outrank it, so
    # the order expected is the API's own p95 for the page's window (the shop sends nothing
    # more by now, so the figures hold still).
    window = page.locator("#window").input_value()
    by_p95 = sorted(
        shop.api("/endpoints", window=window, limit=200),
        key=lambda e: (e["latency"] or {}).get("p95_ms") or 0.0,
    )
    page.click('#endpoints button.sort[data-sort="p95"]')
    expect(page.locator("#endpoints th[aria-sort=descending]")).to_contain_text("p95")
    expect(rows.first).to_have_attribute("data-route", by_p95[-1]["route"])
    page.click('#endpoints button.sort[data-sort="p95"]')
    expect(page.locator("#endpoints th[aria-sort=ascending]")).to_contain_text("p95")
    expect(rows.last).to_have_attribute("data-route", by_p95[-1]["route"])

    # Picking the route charts it alone: its requests, all over the 50 ms threshold.
    page.click('#endpoints tr[data-route="/slow"] button.route')
    expect(page.locator("#scope")).to_have_text("GET /slow")
    expect(page.locator('#endpoints tr.selected[data-route="/slow"]')).to_have_count(1)

    def slow_charted() -> None:
        throughput = _drawn_points(page, "chart-throughput", "throughput")
        p95 = _drawn_points(page, "chart-latency", "latency_p95")
        assert sum(p["count"] for p in throughput) == SLOW_REQUESTS
        assert p95 and all(p["value"] > 100 for p in p95), p95

    _eventually(slow_charted)
    tab.watch.assert_clean(401)


def test_resolve_needs_an_admin_key_and_records_the_reason(shop: Shop, tab: Tab) -> None:
    page = tab.page
    _open_with_key(tab, shop, READ_KEY)
    card = page.locator(f'#alerts article[data-alert-id="{shop.alert_id}"]')
    reason = "deployed the fix for /slow <b>now</b>"

    card.locator("button.resolve").click()
    expect(page.locator("#resolve-dialog")).to_be_visible()
    page.fill("#resolve-reason", reason)
    page.click("#resolve-submit")
    expect(page.locator("#resolve-error")).to_contain_text("needs an admin key (403")
    assert shop.alert_id in {a["id"] for a in shop.api("/alerts", state="firing")}

    page.click("#resolve-error button")  # "Use another key"
    _enter_key(page, ADMIN_KEY)
    expect(page.locator("#key-dialog")).to_be_hidden()
    card.locator("button.resolve").click()
    page.fill("#resolve-reason", reason)
    page.click("#resolve-submit")
    expect(page.locator("#resolve-dialog")).to_be_hidden()
    expect(page.locator("#toast")).to_contain_text("resolved")
    expect(card).to_have_count(0)

    resolved = {a["id"]: a for a in shop.api("/alerts", state="resolved")}
    assert resolved[shop.alert_id]["state"] == "resolved"
    assert resolved[shop.alert_id]["resolution_reason"] == reason
    page.click("#resolved summary")
    done = page.locator(f'#resolved-list article[data-alert-id="{shop.alert_id}"]')
    expect(done).to_have_attribute("data-state", "resolved")
    expect(done.locator(".resolution q")).to_have_text(reason)
    tab.watch.assert_clean(401, 403)


def test_anomalies_in_a_series_are_marked_on_its_chart(shop: Shop, tab: Tab) -> None:
    marked: list[float] = []

    def add_anomaly(route: Route) -> None:
        # The real response, with its first non-empty bucket flagged as an anomaly.
        response = route.fetch()
        series = response.json()
        t = next(p["t"] for p in series["points"] if p["count"])
        series["anomalies"] = [{"t": t, "score": 0.97}]
        marked.append(t)
        route.fulfill(response=response, json=series)

    tab.page.route("**/monitoring/timeseries/latency_p95?*", add_anomaly)
    _open_with_key(tab, shop, ADMIN_KEY)
    bands = tab.page.locator("#chart-latency g.anomaly")
    expect(bands).to_have_count(1)
    expect(bands.locator("title")).to_contain_text("score 0.97")
    at = bands.evaluate_all("gs => gs.map(g => Number(g.dataset.anomalyT))")
    ringed = tab.page.eval_on_selector_all(
        '#chart-latency g[data-series="latency_p95"] circle.pt.anomalous',
        "dots => dots.map(d => Number(d.dataset.t))",
    )
    assert at == ringed == [marked[-1]]
    tab.watch.assert_clean(401)


def _spend_budget(url: str, statuses: list[int], stop: threading.Event) -> None:
    """Keep this key's budget for the DB routes spent until ``stop`` (at most a minute).

    The budget refills by one request a second; a single burst before the page's refresh
    left the page a fresh request whenever the refresh came a second late (a loaded machine).
    """
    deadline = time.monotonic() + 60
    with httpx.Client(headers={"Authorization": f"Bearer {READ_KEY}"}, timeout=10) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            statuses.append(client.get(url + "/monitoring/db/n-plus-one").status_code)
            if statuses[-1] == 429:
                time.sleep(0.02)


def test_rate_limit_is_shown_and_backed_off(shop: Shop, tab: Tab) -> None:
    page = tab.page
    _open_with_key(tab, shop, READ_KEY)
    # Spend this key's budget for the DB routes, which the page reads on every refresh, and
    # keep it spent until the page has shown the limit.
    statuses: list[int] = []
    stop = threading.Event()
    spender = threading.Thread(target=_spend_budget, args=(shop.url, statuses, stop))
    spender.start()
    try:
        _eventually(lambda: _assert_limited(statuses))
        page.click("#refresh-now")
        expect(page.locator("#notice")).to_contain_text("Rate limited")
        expect(page.locator("#status")).to_have_attribute("data-state", "warn")
    finally:
        stop.set()
        spender.join(timeout=30)
    # The budget refills; the page comes back by itself, after the server's Retry-After.
    expect(page.locator("#status")).to_have_attribute("data-state", "ok", timeout=45_000)
    expect(page.locator("#notice")).to_be_hidden()
    tab.watch.assert_clean(401, 429)


def test_page_and_assets_are_public_typed_cached_and_confined(shop: Shop) -> None:
    base = shop.url + "/monitoring/ui"
    page = httpx.get(base)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="ui/static/([^"]+)"', page.text)
    assert {"app.js", "style.css", "favicon.svg"} <= set(assets)
    app_js = httpx.get(f"{base}/static/app.js").text
    assets += re.findall(r'from "\./([^"]+)"', app_js)
    types = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    for name in set(assets):
        response = httpx.get(f"{base}/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(types[name.rpartition(".")[2]])
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        again = httpx.get(f"{base}/static/{name}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        # Offline: nothing fetched from another host (the SVG namespace is a name, not a load).
        text = response.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(?:src|href|url)\W*[\"'(]?\s*(?:https?:)?//", text), name

    for name in ("nope.js", "..%2F__init__.py", "%2e%2e", "ui.py", "..%2F..%2Frouter.py"):
        response = httpx.get(f"{base}/static/{name}")
        assert response.status_code == 404, name
        assert "detail" in response.json()
    schema = httpx.get(shop.url + "/openapi.json").json()
    assert not [path for path in schema["paths"] if "/ui" in path]
