"""The README's walkthrough in a real browser: Playwright driving the system's Chromium against
`dagster dev` on the example project (LOCAL, state in a temp folder).

Used by tests/ui/test_browser.py and by `make screenshots` (`python -m tests.ui.browser
--shots docs/images`), which writes the README's screenshots from the same steps. The
features the forecast notebooks read are seeded in LOCAL's storage (what a run of
max_ds_ViewershipFeatures writes), so the walkthrough runs one pipeline, not Spark first.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DG = str(Path(sys.executable).with_name("dg"))
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
PIPELINE = "max_ds_ContentForecastDaily"
PARTITION = "2024-01-05"
NOTEBOOK_ASSET = f"{PIPELINE} / sagemaker_notebook_job_processing_script"
NOTEBOOK_TITLE = "Content forecast V1: moving average"  # the notebook's first heading
DEV_BUCKET = "datascience-ml-pipelines-dev"  # LOCAL mirrors the DEV bucket
FEATURES = "viewership/features/daily_title_features"


def chromium() -> str | None:
    """The system's Chromium, or None (the test then skips)."""
    found = os.environ.get("ML_PIPELINES_CHROMIUM") or next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), None)
    return found if found and Path(found).exists() else None


def seed_features(storage: Path) -> None:
    """Daily title features for the days the forecast reads, as the Glue step writes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for day in range(1, 6):
        folder = storage / DEV_BUCKET / FEATURES / f"dt=2024-01-0{day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({
            "title_id": ["T001", "T002", "T003"], "views": [10.0 * day, 20.0, 5.0],
            "total_minutes": [100.0, 50.0, 7.5], "avg_minutes": [10.0, 2.5, 1.5],
        })  # fmt: skip
        sink = io.BytesIO()
        pq.write_table(table, sink)
        (folder / "part-0.parquet").write_bytes(sink.getvalue())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_signals() -> None:
    # dagster dev copies an inherited ignored SIGINT/SIGTERM (platform notes): restore defaults
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def dagster_dev(root: Path) -> Iterator[str]:
    """`dg dev` on the example project, as `make dev` starts it, with its state under `root`;
    yields the UI URL."""
    # The webserver shows notebooks only from under the folder it runs in (the repo): LOCAL's
    # state goes to a folder of its own in the repo's .ml_pipelines/ (git-ignored), removed after.
    home = REPO / ".ml_pipelines" / f"ui-{root.name}"
    seed_features(home / "storage")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "ml_pipelines" / "instance" / "dagster.yaml", dagster_home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "ML_PIPELINES_PROJECT_DIR": str(REPO),
        "ML_PIPELINES_HOME": str(home),
        "ML_PIPELINES_ENV": "LOCAL",
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),  # as `make dev` sets it for dg
    }
    env.pop("ML_PIPELINES_STORAGE_ROOT", None)
    log = open(root / "dagster-dev.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [DG, "dev", "-h", "127.0.0.1", "-p", str(port)],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_reset_signals, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (root / "dagster-dev.log").read_text()[-3000:]
                    raise RuntimeError(f"dg dev did not start:\n{log_text}") from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


class Walk:
    """The README's walkthrough ("Start") on one page; each step may leave a screenshot."""

    def __init__(self, page: Any, base_url: str, shots: Path | None = None) -> None:
        self.page, self.base, self.shots = page, base_url, shots

    def shot(self, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(self.shots / f"{name}.png"))

    def skip_community_dialog(self) -> None:
        """The first visit's "Join the Dagster community" dialog: **Skip**."""
        skip = self.page.get_by_role("button", name="Skip", exact=True)
        try:
            skip.first.wait_for(state="visible", timeout=10_000)
        except Exception:  # Playwright's TimeoutError: no dialog this time
            return
        skip.first.click()

    def link(self, name: str) -> Any:
        """The first link named `name` (its accessible name may start with an icon's or a
        shortened form of the name)."""
        pattern = re.escape(name).replace("\\ ", " ").replace("/", "[/]")  # what Playwright's parser accepts
        return self.page.get_by_role("link", name=re.compile(rf"(^|\s){pattern}$")).first

    def sidebar(self, name: str) -> None:
        self.link(name).click()

    def open_ui(self) -> None:
        self.page.goto(self.base, wait_until="networkidle")
        self.skip_community_dialog()

    def materialize(self, pipeline: str, partition: str, assets: int) -> None:
        """Steps 1-2: Jobs -> the pipeline -> Materialize all -> Show all partitions -> the date
        -> Launch 1 run."""
        page = self.page
        self.sidebar("Jobs")
        self.link(pipeline).click()
        page.get_by_role("button", name="Materialize all").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text(f"Launch runs to materialize {assets} assets").wait_for()
        dialog.get_by_role("button", name="Show all partitions").click()
        field = dialog.get_by_role("textbox").first
        field.fill(partition)
        field.press("Enter")
        dialog.get_by_text("1 partition", exact=True).first.wait_for()
        self.shot("launch-dialog")
        dialog.get_by_role("button", name="Launch 1 run").click()
        dialog.wait_for(state="hidden")  # the run is launched

    def wait_for_run(self, pipeline: str, timeout_s: float = 240) -> str:
        """Step 4: Runs, until the newest run (this instance's only one) ends; its status."""
        page = self.page
        self.sidebar("Runs")
        self.link(pipeline).wait_for()  # the Target column names the pipeline's job
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for status in ("Success", "Failure", "Canceled"):
                if page.get_by_text(status, exact=True).count():
                    return status
            time.sleep(2)
            page.reload(wait_until="networkidle")
        self.shot("runs-timeout")
        raise TimeoutError(f"the run of {pipeline} did not end in {timeout_s} s")

    def open_run(self) -> None:
        """The newest run's page (its ID, the first 8 characters of the run id, is a link)."""
        self.page.get_by_role("link", name=re.compile(r"(^|\s)[0-9a-f]{8}$")).first.click()
        self.page.get_by_text("RUN_SUCCESS").first.wait_for()  # the run's event log has loaded
        self.page.wait_for_load_state("networkidle")

    def open_notebook(self, asset_name: str) -> Any:
        """Step 5: Catalog -> the asset -> its `notebook` metadata link; returns the notebook's tab."""
        page = self.page
        self.sidebar("Catalog")
        self.link(asset_name).click()
        page.get_by_text("Automation details").first.wait_for()
        self.shot("asset")
        link = page.get_by_role("row").filter(has_text="notebook").get_by_role("link").first
        with page.context.expect_page() as opened:
            link.click()
        notebook = opened.value
        notebook.wait_for_load_state("networkidle")
        return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Walk the README in Chromium; optionally save screenshots.")
    parser.add_argument("--shots", type=Path, help="folder for the screenshots (e.g. docs/images)")
    args = parser.parse_args(argv)
    executable = chromium()
    if executable is None:
        print("no Chromium found (apt-get install chromium, or set ML_PIPELINES_CHROMIUM)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="ml-pipelines-ui-") as tmp, dagster_dev(Path(tmp)) as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            walk = Walk(page, url, args.shots)
            walk.open_ui()
            walk.materialize(PIPELINE, PARTITION, assets=4)
            print(f"run of {PIPELINE} {PARTITION}: {walk.wait_for_run(PIPELINE)}")
            walk.open_run()
            walk.shot("run")
            notebook = walk.open_notebook(NOTEBOOK_ASSET)
            notebook.get_by_text(NOTEBOOK_TITLE).first.wait_for()
            if args.shots is not None:
                notebook.screenshot(path=str(args.shots / "notebook.png"))
            page.goto(f"{url}/asset-groups~group%3A%22{PIPELINE}%22", wait_until="networkidle")
            walk.shot("lineage")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
