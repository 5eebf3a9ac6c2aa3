"""The real webserver serves the shipped code location (workspace.yaml, as `make dev`): each
example pipeline is a connected asset graph in its group, with its job and cron schedule, which
each of its asset pages lists; the webserver renders a run's executed notebook from the link
the notebook step's materialization carries."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ml_pipelines.dagster_home import instance_config_text

REPO = Path(__file__).resolve().parents[2]
WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))

QUERY = """
{
  assetNodes { assetKey { path } dependencyKeys { path } groupName isMaterializable isPartitioned }
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name schedules { name cronSchedule executionTimezone } } }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, query: str) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui")
    (home / "dagster_home").mkdir()
    (home / "dagster_home" / "dagster.yaml").write_text(instance_config_text())
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home / "dagster_home"),
        "ML_PIPELINES_PROJECT_DIR": str(REPO),
        "ML_PIPELINES_HOME": str(home / "state"),
        "ML_PIPELINES_ENV": "LOCAL",
    }

    def _reset_signals():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    proc = subprocess.Popen(
        [WEBSERVER, "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_reset_signals,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"webserver exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_graphql_shows_connected_pipelines_with_schedules(webserver):
    data = _post(f"{webserver}/graphql", QUERY)["data"]
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}

    forecast = "max_ds_ContentForecastDaily"
    notebook = nodes[f"{forecast}/sagemaker_notebook_job_processing_script"]
    assert notebook["groupName"] == forecast and notebook["isPartitioned"] and notebook["isMaterializable"]
    assert {"/".join(d["path"]) for d in notebook["dependencyKeys"]} == {
        f"{forecast}/ecr_container_creation",
        f"{forecast}/external_task_dag_status",
    }
    sql = nodes[f"{forecast}/write_to_snowflake"]
    assert {"/".join(d["path"]) for d in sql["dependencyKeys"]} == {
        f"{forecast}/sagemaker_notebook_job_processing_script"
    }
    wait = nodes[f"{forecast}/external_task_dag_status"]
    assert not wait["isMaterializable"]
    assert "max_ds_ViewershipFeatures/glue_job_processing_script" in {
        "/".join(d["path"]) for d in wait["dependencyKeys"]
    }

    (repo,) = data["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s for s in repo["schedules"]}
    for pipeline in ("max_ds_ContentForecastDaily", "max_ds_ViewershipFeatures", "max_ds_RawEventsArchive"):
        assert schedules[f"{pipeline}_schedule"]["cronSchedule"]
        assert schedules[f"{pipeline}_schedule"]["executionTimezone"] == "UTC"


AUTOMATION = """
{
  assetNodes {
    assetKey { path }
    jobNames
    targetingInstigators { __typename ... on Schedule { name cronSchedule } }
  }
}
"""


def test_each_asset_page_lists_its_pipelines_job_and_schedule(webserver):
    nodes = {
        "/".join(n["assetKey"]["path"]): n for n in _post(f"{webserver}/graphql", AUTOMATION)["data"]["assetNodes"]
    }
    for pipeline, step in (
        ("max_ds_ContentForecastDaily", "sagemaker_notebook_job_processing_script"),
        ("max_ds_ViewershipFeatures", "glue_job_processing_script"),
    ):
        node = nodes[f"{pipeline}/{step}"]
        assert pipeline in node["jobNames"]  # "Automation details > Jobs", and the job page per pipeline
        # "Automation details > Schedules" (not "No automations found for this asset")
        assert {"__typename": "Schedule", "name": f"{pipeline}_schedule", "cronSchedule": "0 6 * * *"} in node[
            "targetingInstigators"
        ]


def test_the_notebook_link_opens_the_webservers_notebook_view(webserver):
    import uuid

    from ml_pipelines.steps.links import notebook_view_url

    # under the code server's working folder (the repo, as for `make dev`), as LOCAL's runs/ copies are
    folder = REPO / ".ml_pipelines" / f"test-notebook-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    notebook = folder / "Executed.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [], "source": "rows = 12345"}
    notebook.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    try:
        link = notebook_view_url(notebook, "ml_pipelines", environ={})  # what the materialization carries
        assert link.startswith("/notebook?path=")
        with urllib.request.urlopen(webserver + link, timeout=60) as response:
            html = response.read().decode()
        assert html.startswith("<style>") and "12345" in html  # nbconvert's HTML of the notebook
    finally:
        notebook.unlink()
        folder.rmdir()
