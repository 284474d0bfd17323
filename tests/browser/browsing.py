"""A browser tab under watch, for the browser tests: what went wrong in it, and its screenshots.

Watched: console errors, uncaught page errors, failed requests to the test server and any request leaving it
(the machine has no internet: an editor fetching from a CDN or a vocabulary service must show up as a
failure, not as a slow page). Screenshots go to test-artefacts/ at the repository root, named after the test
and the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"


@dataclass
class Visit:
    """One browser tab on the test server, with what went wrong in it recorded as it happens."""

    page: Any
    base: str
    name: str
    problems: list[str] = field(default_factory=list)
    shots: int = 0

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base + path, wait_until="load")
        status = response.status if response else "no answer"
        assert response is not None and response.ok, f"GET {path}: {status}; " + "; ".join(self.problems)
        return response

    def screenshot(self, step: str) -> Path:
        """Write test-artefacts/<test>-<n>-<step>.png (full page)."""
        self.shots += 1
        ARTEFACTS.mkdir(exist_ok=True)
        path = ARTEFACTS / f"{self.name}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def forget_screenshots(self) -> None:
        """Remove this test's screenshots of an earlier run, so the folder shows the last run only."""
        for old in ARTEFACTS.glob(f"{self.name}-[0-9][0-9]-*.png"):
            old.unlink()

    def assert_clean(self) -> None:
        assert not self.problems, "the browser reported:\n" + "\n".join(self.problems)


def watch(visit: Visit) -> None:
    """Record in `visit.problems` what a reader's console would show as wrong, and any request off the server."""
    page, origin = visit.page, visit.base

    def on_console(message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url") or page.url
            visit.problems.append(f"console error on {page.url} ({where}): {message.text}")

    def on_request_failed(request: Any) -> None:
        if request.url.startswith(origin):
            visit.problems.append(f"request failed on {page.url}: {request.method} {request.url}: {request.failure}")

    def on_request(request: Any) -> None:
        if not request.url.startswith((origin + "/", "data:", "blob:")):
            visit.problems.append(f"the page tried to leave the test server: {request.method} {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: visit.problems.append(f"uncaught error on {page.url}: {error}"))
    page.on("requestfailed", on_request_failed)
    page.on("request", on_request)
