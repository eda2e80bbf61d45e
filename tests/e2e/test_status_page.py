"""The status page in headless Chromium, served by `make demo` (`python -m devtools.demo`).

The demo brings healthy, stale, never-synced and wrong-password Redis stores
and API-only integrations across two projects: what an on-call engineer
would see. Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    Page,
    Request,
    ViewportSize,
    async_playwright,
    expect,
)

from devtools.servers.ports import LOOPBACK, free_port
from monitor.export.verdict import Verdict

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
REPO = Path(__file__).resolve().parents[2]
HEALTHY = "Web production Redis"
STALE = "Web staging Redis"
WRONG_PASSWORD = "Mobile production Redis (cache tier)"


def get_status(port: int) -> dict[str, Any] | None:
    """/status as JSON once the daemon is ready; None before."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", "/-/ready")
        if connection.getresponse().read() != b"ready\n":
            return None
        connection.request("GET", "/status")
        status: dict[str, Any] = json.loads(connection.getresponse().read())
    except OSError:
        return None  # not listening yet
    else:
        return status
    finally:
        connection.close()


def probed(status: dict[str, Any] | None) -> bool:
    """True once the three stores the tests look at have each been probed."""
    if status is None:
        return False
    seen = {row["name"]: row["probe"] for row in status["targets"]}
    return all(seen.get(name) for name in (HEALTHY, STALE, WRONG_PASSWORD))


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """`python -m devtools.demo` on a free port, probed once; its base URL."""
    assert shutil.which("redis-server"), "redis-server is needed (make system-deps)"
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (make system-deps)"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--listen", f"{LOOPBACK}:{port}"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=Path(__file__).resolve().parents[2],  # devtools/ is not installed
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not probed(get_status(port)):
            assert process.poll() is None, "the demo exited early"
            assert time.monotonic() < deadline, "the demo never probed its stores"
            time.sleep(0.05)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert process.returncode == 0, stderr.decode()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium, closed after the test."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class Watched:
    """A page and every request it made."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def foreign(self, base: str) -> list[str]:
        """Requests to anything but the monitor itself (data: URLs stay local)."""
        return [
            url for url in self.requests if not url.startswith((f"{base}/", "data:"))
        ]


@pytest.fixture
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    """A 1366 x 768 page recording its requests and script errors."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield Watched(await context.new_page())
    finally:
        await context.close()


def named_row(page: Page, name: str) -> Any:
    """The table row whose header cell's name is exactly `name`."""
    return page.locator("#rows tr").filter(
        has=page.get_by_role("rowheader").filter(
            has=page.locator(".name").get_by_text(name, exact=True)
        )
    )


def save_screenshot(png: bytes, tmp_path: Path) -> Path:
    """Write the screenshot under the test's tmp_path and to test-output/."""
    (tmp_path / "status-page.png").write_bytes(png)
    shared = REPO / "test-output" / "status-page.png"
    shared.parent.mkdir(exist_ok=True)
    shared.write_bytes(png)
    print(f"status page screenshot: {shared} (and {tmp_path / 'status-page.png'})")
    return shared


async def test_status_page_shows_each_store_state_and_matching_counts(
    demo: str, watched: Watched, tmp_path: Path
) -> None:
    """Healthy, stale and wrong-password stores each show their verdict; the summary counts the rows."""
    page = watched.page
    await page.goto(f"{demo}/")
    # First, so that a failing run still leaves a picture of what went wrong.
    save_screenshot(await page.screenshot(full_page=True), tmp_path)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "LaunchDarkly big segment stores"
    )

    healthy = named_row(page, HEALTHY)
    await expect(healthy.locator(".badge")).to_have_text("healthy")
    await expect(healthy.locator(".c-probe")).to_contain_text("up · fresh")
    stale = named_row(page, STALE)
    await expect(stale.locator(".badge")).to_have_text("stale")
    await expect(stale.locator(".c-age")).to_have_text("15m")
    broken = named_row(page, WRONG_PASSWORD)
    await expect(broken.locator(".badge")).to_have_text("unavailable")
    error = broken.locator(".c-error .msg").first
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("authentication failed")
    title = await broken.locator(".c-error .errors").get_attribute("title")
    assert title is not None
    assert title.startswith("store, auth: authentication failed")
    assert "not-the-password" not in (await page.content())

    verdicts = await page.locator("#rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.verdict)"
    )
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    chips = await page.locator("[data-chip]").evaluate_all(
        "chips => chips.map(c => [c.dataset.chip, Number(c.querySelector('.n').textContent)])"
    )
    assert dict(chips) == counts
    assert [c for c, _ in chips] == list(dict.fromkeys(verdicts))  # worst first
    problems = sum(counts.get(v, 0) for v in Verdict if v.is_problem)
    await expect(page.locator(".headline")).to_have_text(
        f"{problems} of {len(verdicts)} targets need attention"
    )
    await expect(page).to_have_title(
        f"{problems} problems · Big segment stores · ld-store-monitor"
    )
    facts = page.locator("#facts > div")
    await expect(facts.filter(has_text="Daemon").locator("dd")).to_have_text(
        "ready, healthy"
    )
    await expect(facts.filter(has_text="Stale after").locator("dd")).to_have_text("2m")

    assert await page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert watched.foreign(demo) == []
    assert watched.errors == []


async def test_filtering_by_project_hides_the_other_project_and_survives_reload(
    demo: str, watched: Watched
) -> None:
    """Choosing a project hides every other project's rows; the choice is in the hash and survives reload."""
    page = watched.page
    await page.goto(f"{demo}/")
    mobile = page.locator('#rows tr[data-project="mobile"]')
    web = page.locator('#rows tr[data-project="web"]')
    assert await mobile.count() > 0
    assert await web.count() > 0

    await page.get_by_label("Project").select_option("web")
    for index in range(await mobile.count()):
        await expect(mobile.nth(index)).to_be_hidden()
    await expect(named_row(page, HEALTHY)).to_be_visible()
    await expect(page.locator("#shown")).to_have_text(
        f"Showing {await web.count()} of {await web.count() + await mobile.count()}"
    )
    assert page.url.endswith("#project=web")

    await page.reload()
    await expect(page.get_by_label("Project")).to_have_value("web")
    await expect(named_row(page, WRONG_PASSWORD)).to_be_hidden()
    await expect(named_row(page, STALE)).to_be_visible()

    await page.get_by_role("button", name="stale").click()
    assert page.url.endswith("#project=web&verdict=stale")
    await expect(page.locator("#rows tr:visible")).to_have_count(1)
    await expect(named_row(page, STALE)).to_be_visible()

    await page.get_by_role("button", name="Clear").click()
    await expect(page.locator("#rows tr:visible")).to_have_count(
        await page.locator("#rows tr").count()
    )
    await page.get_by_label("Search").fill("authentication failed")
    await expect(page.locator("#rows tr:visible")).to_have_count(1)
    await expect(named_row(page, WRONG_PASSWORD)).to_be_visible()
    assert watched.foreign(demo) == []
    assert watched.errors == []


async def test_shared_link_opens_with_its_filters_applied(
    demo: str, watched: Watched
) -> None:
    """A link carrying filters in its hash opens with them set and applied."""
    page = watched.page
    await page.goto(f"{demo}/#environment=staging&problems=1")
    await expect(page.get_by_label("Environment")).to_have_value("staging")
    await expect(page.get_by_label("Only problems")).to_be_checked()
    await expect(page.locator("#rows tr:visible")).to_have_count(1)
    await expect(named_row(page, STALE)).to_be_visible()


async def test_page_refreshes_in_place_keeping_filters(
    demo: str, watched: Watched
) -> None:
    """With ?refresh=1 the page fetches / again within seconds and swaps rows without reloading or losing filters."""
    page = watched.page
    base = f"{demo}/?refresh=1"
    await page.goto(f"{base}#project=mobile")
    await page.evaluate("window.sameDocument = true")
    before = await page.get_attribute("body", "data-generated")
    async with page.expect_request(lambda r: r.url == base, timeout=5000):
        pass
    await page.wait_for_function(
        "before => document.body.dataset.generated !== before", arg=before, timeout=5000
    )
    assert await page.evaluate("window.sameDocument") is True  # no navigation
    await expect(page.locator("#live")).to_contain_text("Live · updated")
    await expect(named_row(page, HEALTHY)).to_be_hidden()
    await expect(named_row(page, WRONG_PASSWORD)).to_be_visible()
    await expect(page.get_by_label("Project")).to_have_value("mobile")
    assert watched.foreign(demo) == []
    assert watched.errors == []


async def test_page_warns_when_the_monitor_stops_answering(
    demo: str, watched: Watched
) -> None:
    """When a refresh fails the page says the data is old, and recovers when it answers again."""
    page = watched.page
    base = f"{demo}/?refresh=1"
    await page.goto(base)
    await page.route(base, lambda route: route.abort("connectionrefused"))
    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible(timeout=5000)
    await expect(alert).to_contain_text("Cannot reach the monitor")
    await expect(page.locator("#live")).to_contain_text("Refresh failed")
    await page.unroute(base)
    await expect(alert).to_be_hidden(timeout=5000)
    await expect(page.locator("#live")).to_contain_text("Live · updated")


async def test_page_without_javascript_shows_every_row(
    demo: str, browser: Browser
) -> None:
    """With JavaScript off every row is visible and the filter bar is not shown."""
    context = await browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(f"{demo}/")
        rows = page.locator("#rows tr")
        assert await rows.count() >= 8
        await expect(page.locator("#rows tr:visible")).to_have_count(await rows.count())
        await expect(page.locator("#filters")).to_be_hidden()
        await expect(
            named_row(page, WRONG_PASSWORD).locator(".c-error")
        ).to_contain_text("authentication failed")
    finally:
        await context.close()
