"""The client-readable plan in a real headless browser: Debian's Chromium (/usr/bin/chromium),
driven by Playwright (`executable_path`, so no browser is downloaded), against a real gateway
(uvicorn) holding the sample network. The bearer token goes in as an extra HTTP header, which the
Chromium command line cannot send.

SQLite only: what the page shows through the disclosure gate is tested on both stores in
tests/gateway/coordination/test_client_plan.py; this test checks what a browser makes of it.
The screenshot is kept in the test's folder (and copied to $CLIENT_PLAN_SCREENSHOT_DIR when set,
for a person to look at).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Browser, Page, sync_playwright

from gateway.app import build_services
from gateway.samples import load_samples
from gateway.settings import Settings
from tests.e2e.server import Gateway, fresh_database, running_gateway

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CUSTODIAN = "tyokykytiimi"  # holds Aino's process
PLAN = "/CarePlan/aino-plan/$client-plan"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("client-plan")
    url = fresh_database("sqlite", workdir, "client_plan", "")  # a file in this module's folder
    # The samples load as `plan-gateway serve` loads them: through the interactions, offline.
    svc = build_services(Settings(database_url=url, token_key_file=str(workdir / "key.json")))
    try:
        assert not any(r.failed for r in load_samples(svc))
    finally:
        svc.repo.close()
    with running_gateway(url, workdir) as gw:
        yield gw


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (scripts/test installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def open_plan(browser: Browser, gateway: Gateway, query: str, errors: list[str]) -> Page:
    context = browser.new_context(
        viewport={"width": 1100, "height": 1400},
        extra_http_headers={"Authorization": f"Bearer {gateway.token(CUSTODIAN)}"},
    )
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(gateway.base + PLAN + query)
    assert response is not None and response.status == 200
    return page


def keep(png: bytes, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(png)
    target = os.environ.get("CLIENT_PLAN_SCREENSHOT_DIR")
    if target:
        shutil.copy(tmp_path / name, Path(target) / name)


def test_the_plan_reads_in_a_browser(browser: Browser, gateway: Gateway, tmp_path: Path) -> None:
    errors: list[str] = []
    page = open_plan(browser, gateway, "", errors)
    assert page.evaluate("document.documentElement.lang") == "fi"
    assert page.title() == "Suunnitelmani: Aino Testinen"
    assert page.locator("#coordinator .person-name").inner_text() == "Satu Malli"
    assert page.locator("h2").first.inner_text() == "Kuka vie asiaani eteenpäin"
    svg = page.locator("svg.network")
    box = svg.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 400
    assert svg.locator("title").text_content() == (
        "Verkostoni: Aino Testinen ja hänen palveluverkostonsa"
    )
    assert "Satu Malli" in (svg.locator("g.node.coordinator").text_content() or "")
    rows = page.locator("table.responsibilities tbody tr")
    assert rows.count() == 4
    assert errors == []  # no script, no blocked load: the page is self-contained

    png = page.screenshot(full_page=True)
    keep(png, tmp_path, "client-plan-fi.png")
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.height > 1400  # the whole plan, not one screen
    assert ImageStat.Stat(image).var[0] > 500  # not blank: text, boxes and the picture


def test_the_english_plan_reads_in_a_browser(
    browser: Browser, gateway: Gateway, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = open_plan(browser, gateway, "?lang=en", errors)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#review .big").inner_text() == "We return to the plan on 15 January 2027."
    assert errors == []
    keep(page.screenshot(full_page=True), tmp_path, "client-plan-en.png")
