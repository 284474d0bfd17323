"""Real-browser fixtures: Debian's chromium driven headless by Playwright against a live `cmokg serve`.

The browser is the system's chromium (Playwright never downloads one); without it the browser tests skip
with the reason, except under CI (CI=true), where a missing browser fails the run. The server is the real
WSGI server (gunicorn via `cmokg serve`) on a copy of the seed store, on a free loopback port.

Every page a test opens is watched (browsing.watch) and a test fails on anything it reports; a failed test
leaves a screenshot of where it stopped in test-artefacts/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsing import Visit, watch
from conformance.server import live_server

STEP_TIMEOUT_MS = 30_000
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
# No internet for the pages, even on a machine that has it: every host name but the loopback fails to resolve
# at once. (Request interception, page.route, would do it too, but it stops chromium asking for /favicon.ico,
# and so hides a 404 every reader's console shows.)
CHROMIUM_ARGS = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def chromium_program() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    program = chromium_program()
    if program is None:
        reason = ("chromium is absent: the browser tests drive Debian's chromium (`apt-get install chromium`); "
                  "Playwright does not download one")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: a missing browser fails the run)")
        pytest.skip(reason)
    return program


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def server(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(seed_store_path, tmp_path_factory.mktemp("browser"), CMOKG_QUERY_WORKERS="2") as url:
        yield url


def _test_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name.removeprefix("test_")).strip("-")


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember whether the test itself failed, so its fixture can take a screenshot of the failure."""
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = report.failed
    return report


def _open(browser: Any, server: str, request: pytest.FixtureRequest, javascript: bool) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=javascript)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    v = Visit(page=page, base=server, name=_test_name(request))
    v.forget_screenshots()
    watch(v)
    try:
        yield v
        if request.node.stash.get(_FAILED, False):
            v.screenshot("failed")  # the failure already reports what went wrong
        else:
            v.assert_clean()
    finally:
        context.close()


@pytest.fixture
def visit(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Visit]:
    """A fresh browser context (no stored state) and page; fails the test on any console error."""
    yield from _open(browser, server, request, javascript=True)


@pytest.fixture
def visit_without_js(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Visit]:
    """As `visit`, with JavaScript turned off, as some readers browse."""
    yield from _open(browser, server, request, javascript=False)
