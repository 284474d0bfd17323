"""A reviewer uploads a revision on /review in chromium and sees, above the import form, what importing it
would change: the batch it supersedes and one table row per CMOC, source or evidence fragment new, changed or
gone (tests/test_revision_preview.py checks the rows against batch-changes)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import Visit
from conformance.server import live_server
from test_revision_preview import EXPECTED, NAME, NEW_QUOTE, QUOTE, good_files, revised_files, write, zipped

from graph.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seed graph with the good fixture imported as workbook `extraction`, importing over the web on
    (overrides the session's seed server for this module)."""
    work = tmp_path_factory.mktemp("revision-preview")
    store = work / "store"
    shutil.copytree(seed_store_path, store)
    folder = write(work / "v1" / NAME, good_files())
    assert main(["import", "--store", str(store), str(folder), "--reviewer", "Ada"]) == 0
    with live_server(store, work, CMOKG_QUERY_WORKERS="1", CMOKG_REVIEWER_TOKEN="browser-token") as url:
        yield url


def test_uploading_a_revision_shows_what_importing_it_changes(visit: Visit) -> None:
    visit.goto("/review")
    visit.page.set_input_files("#workbook", files=[{"name": f"{NAME}.zip", "mimeType": "application/zip",
                                                    "buffer": zipped(revised_files())}])
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Validate").click()
    rows = visit.page.locator("#changes-table tbody tr")
    rows.first.wait_for()
    visit.screenshot("changes")
    assert visit.page.locator("#verdict").inner_text().startswith("conforms")
    assert visit.page.get_by_role("heading", name="What importing this changes").is_visible()
    assert visit.page.locator("#supersedes a[href^='/id/batch/']").count() == 1
    shown = {(row.get_attribute("data-change"), row.get_attribute("data-kind"), row.get_attribute("data-node"))
             for row in rows.all()}
    assert shown == EXPECTED
    cells = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in rows.all()]
    assert ["changed", "evidence", "fx-e1", f"{QUOTE} → {NEW_QUOTE}"] in cells
    assert ["new", "CMOC", "fx-c3", "CMOC3"] in cells
    # above the import form, which is there (the revision conforms and a token is configured)
    section = visit.page.locator("#changes").bounding_box()
    form = visit.page.locator("form#import").bounding_box()
    assert section is not None and form is not None and section["y"] < form["y"]
    # a changed node's identifier leads to its page
    with visit.page.expect_navigation():
        visit.page.locator("#changes-table a", has_text="fx-c1").click()
    assert visit.page.url.endswith("/id/cmoc/fx-c1")
    visit.assert_clean()
