"""The README's walkthrough clicked in a real browser (tests/ui/browser.py): Jobs -> the forecast
pipeline -> Materialize all -> 2024-01-05 -> Launch 1 run; the run succeeds; the asset page
shows its job and schedule, and its notebook link opens the run's executed notebook.
Skipped where no Chromium is installed (apt-get install chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.browser import NOTEBOOK_ASSET, NOTEBOOK_TITLE, PARTITION, PIPELINE, Walk, chromium, dagster_dev

CHROMIUM = chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
@pytest.mark.timeout(600)
def test_the_readme_walkthrough_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with dagster_dev(tmp_path) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            walk = Walk(page, url)
            walk.open_ui()
            walk.materialize(PIPELINE, PARTITION, assets=4)
            assert walk.wait_for_run(PIPELINE) == "Success"
            notebook = walk.open_notebook(NOTEBOOK_ASSET)
            # the asset page named the pipeline's job and schedule before the click
            assert page.get_by_text("At 06:00 AM UTC").count() >= 1
            notebook.get_by_text(NOTEBOOK_TITLE).first.wait_for()
            assert "/notebook?path=" in notebook.url and "/output/runs/" in notebook.url
        finally:
            browser.close()
