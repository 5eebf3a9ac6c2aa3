"""LOCAL notebook backend: papermill against the step env's kernel, run through Dagster."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
import pytest
from dagster import DagsterInstance

from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.local.notebook import LocalNotebooks
from ml_pipelines.local.storage import LocalStorage
from ml_pipelines.plan.model import ContainerImagePlan, NotebookPlan

from .fixtures.helpers import MODEL_DIR, failure_text, log_messages, run_identity, run_step, shared_home, step_metadata

BUCKET_PREFIX = "s3://model-bucket/sagemaker-models-local/demo_model"


@pytest.fixture(scope="module")
def home(tmp_path_factory: Any) -> Path:
    home = shared_home(tmp_path_factory)
    start = time.perf_counter()
    env = ensure_python_env(home, "python3", MODEL_DIR / "requirements.txt", logging.getLogger(__name__))
    print(f"\nshared env {'reused' if env.reused else 'built'} in {time.perf_counter() - start:.2f}s")
    return home


def notebook_plan(name: str, parameters: dict[str, Any]) -> NotebookPlan:
    run = run_identity(f"sagemaker_notebook_job_processing_script_{name}")
    image = ContainerImagePlan(
        run=run,
        kernel="python3",
        model_dir=MODEL_DIR,
        requirements_file=MODEL_DIR / "requirements.txt",
        dockerfile=None,
        content_hash="plan-hash",
        image_name="demo_model_daily-python3",
    )
    return NotebookPlan(
        run=run,
        notebook=MODEL_DIR / f"{name}.ipynb",
        model_dir=MODEL_DIR,
        lib_dir=MODEL_DIR / "lib",
        parameter_file=MODEL_DIR / "parameters.json",
        image=image,
        parameters=parameters,
        input_uri=f"{BUCKET_PREFIX}/{name}/input/",
        output_uri=f"{BUCKET_PREFIX}/{name}/output/",
        instance_type="ml.t3.medium",
        instance_count=1,
        volume_size_gb=40,
    )


def tagged_output(nb: Any, tag: str) -> str:
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return "".join(o["data"]["text/plain"] for o in cell.outputs if o.get("output_type") == "execute_result")


def test_notebook_receives_parameters_and_writes_outputs(tmp_path: Path, home: Path, instance: DagsterInstance) -> None:
    storage = tmp_path / "storage"
    backend = LocalNotebooks(home=str(home), storage=LocalStorage(root=str(storage)))
    plan = notebook_plan("report", {"rows": 3, "label": "local"})

    result = run_step(backend, lambda b, ctx: b.run(ctx, plan), instance)
    assert result.success, failure_text(result)
    meta = step_metadata(result)
    print(f"\nnotebook step {meta['duration_s']}s")

    out = storage / "model-bucket/sagemaker-models-local/demo_model/report/output"
    with open(out / "tables" / "report.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["label", "env", "i", "doubled"], *[["local", "LOCAL", str(i), str(2 * i)] for i in range(3)]]

    # the run's own executed notebook, linked from the metadata; a success also publishes it to output/
    run_output = f"{plan.output_uri}runs/{result.run_id}/"
    executed = out / "runs" / result.run_id / "report.ipynb"
    assert meta["notebook_path"] == str(executed)
    # one click from the asset page: the webserver's notebook view of this run's copy
    assert meta["notebook"] == f"/notebook?path={quote(str(executed))}&repoLocName=ml_pipelines"
    assert (out / "report.ipynb").read_bytes() == executed.read_bytes()
    assert meta["output_uri"] == plan.output_uri and meta["run_output_uri"] == run_output
    assert meta["output_files"] == [
        f"{run_output}report.ipynb",
        f"{plan.output_uri}report.ipynb",
        f"{plan.output_uri}tables/report.csv",
    ]
    assert meta["kernel"] == "python3" and meta["kernel_name"].startswith("mlp-python3-")
    nb = nbformat.read(executed, as_version=4)
    assert tagged_output(nb, "result") == "6"  # helpers.double(rows) from lib/
    assert tagged_output(nb, "cwd_check") == "True"  # kernel cwd is the scratch dir holding output_dir
    assert tagged_output(nb, "prefix") == repr(str(home / "envs" / meta["kernel_name"].removeprefix("mlp-")))
    injected = "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "rows = 3" in injected and 'ENV = "LOCAL"' in injected and "output_dir = " in injected
    # notebook prints reach the Dagster log
    assert "wrote 3 rows for local" in log_messages(instance, result)

    # inputs staged in the run's own input folder
    inp = storage / "model-bucket/sagemaker-models-local/demo_model/report/input/runs" / result.run_id
    assert (inp / "report.ipynb").is_file() and (inp / "lib" / "helpers.py").is_file()
    assert json.loads((inp / "parameters.json").read_text())["LOCAL"] == {"label": "local"}
    assert not list((home / "work").iterdir())  # scratch dir removed


def test_failing_cell(tmp_path: Path, home: Path, instance: DagsterInstance) -> None:
    storage = tmp_path / "storage"
    backend = LocalNotebooks(home=str(home), storage=LocalStorage(root=str(storage)))
    plan = notebook_plan("failing", {"threshold": 41})

    result = run_step(backend, lambda b, ctx: b.run(ctx, plan), instance)
    assert not result.success
    text = failure_text(result)
    # parameters cell = In [1], injected parameters = In [2], file write = In [3], the raise = In [4]
    assert "failed in cell In [4]" in text
    assert "ValueError: bad value 42" in text
    assert 'raise ValueError(f"bad value {value}")' in text  # traceback text
    assert any("ValueError: bad value 42" in m for m in log_messages(instance, result))  # context.log.error

    # a failed run's notebook and files stay in its own folder; nothing is published to output/
    out = storage / "model-bucket/sagemaker-models-local/demo_model/failing/output"
    assert "Partly executed notebook: s3://model-bucket/" in text and f"/runs/{result.run_id}/failing.ipynb" in text
    nb = nbformat.read(out / "runs" / result.run_id / "failing.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert [e.evalue for e in errors] == ["bad value 42"]
    # files written before the failure are kept, in the run's folder
    assert (out / "runs" / result.run_id / "before_failure.txt").read_text() == "partial"
    assert sorted(p.name for p in out.iterdir()) == ["runs"]
