"""Attack: runs of the same notebook step must not overwrite or pull away each other's files.

1. Partition 2024-01-02 succeeds, then 2024-01-03 fails in a cell: 2024-01-02's
   materialization must still link to a notebook holding 2024-01-02's successful run, and
   the model's output location must still hold 2024-01-02's files (before: the failed run
   overwrote both).
2. Two runs at once: while one run's kernel reads its `lib/` files in a loop, another run of
   the same step stages its inputs; no read may fail (before: each run `rmtree`d and
   re-copied the shared `input/lib` under the other's reads).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from dagster import DagsterEventType, DagsterInstance

from ml_pipelines.local.envs import ensure_python_env
from ml_pipelines.local.notebook import LocalNotebooks
from ml_pipelines.local.storage import LocalStorage
from ml_pipelines.plan.model import ContainerImagePlan, NotebookPlan, RunIdentity
from tests.local.fixtures.helpers import MODEL_DIR, run_step, shared_home

PREFIX = "s3://model-bucket/sagemaker-models-local/attack/partitioned"
LIB_FILES = 300

CELLS = [
    ('ds = "unset"\nfail = False\nmarker = ""\nseconds = 0\noutput_dir = "."\nENV = "UNSET"', ["parameters"]),
    (
        "import json, os, time\n"
        "lib = os.environ['PYTHONPATH'].split(os.pathsep)[0]\n"
        "if marker:\n"
        "    open(marker, 'w').close()\n"
        "reads = failures = 0\n"
        "end = time.time() + seconds\n"
        "while time.time() < end:\n"
        f"    for i in range({LIB_FILES}):\n"
        "        reads += 1\n"
        "        try:\n"
        "            with open(os.path.join(lib, f'mod_{i}.py')) as f:\n"
        "                assert f.read() == f'VALUE = {i}\\n'\n"
        "        except (OSError, AssertionError):\n"
        "            failures += 1\n"
        "for name in ('result.json', f'result_{ds}.json'):\n"
        "    with open(f'{output_dir}/{name}', 'w') as f:\n"
        "        json.dump({'ds': ds, 'reads': reads, 'failures': failures}, f)\n"
        "print(f'run for {ds}')",
        [],
    ),
    ('if fail:\n    raise ValueError(f"bad data for {ds}")', []),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model folder (notebook + a lib/ of many files) and a LOCAL home with its env built."""
    home = shared_home(tmp_path_factory)
    ensure_python_env(home, "python3", MODEL_DIR / "requirements.txt", logging.getLogger(__name__))
    model_dir = tmp_path_factory.mktemp("model")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, model_dir / "partitioned.ipynb")
    (model_dir / "lib").mkdir()
    for i in range(LIB_FILES):
        (model_dir / "lib" / f"mod_{i}.py").write_text(f"VALUE = {i}\n")
    return model_dir, home


def plan_for(model_dir: Path, parameters: dict[str, Any]) -> NotebookPlan:
    run = RunIdentity(pipeline_id="attack_daily", step_name="sagemaker_notebook_partitioned", env="LOCAL", window=None)
    image = ContainerImagePlan(
        run=run,
        kernel="python3",
        model_dir=MODEL_DIR,
        requirements_file=MODEL_DIR / "requirements.txt",
        dockerfile=None,
        content_hash="h",
        image_name="attack-python3",
    )
    return NotebookPlan(
        run=run,
        notebook=model_dir / "partitioned.ipynb",
        model_dir=model_dir,
        lib_dir=model_dir / "lib",
        parameter_file=None,
        image=image,
        parameters=parameters,
        input_uri=f"{PREFIX}/input/",
        output_uri=f"{PREFIX}/output/",
        instance_type="ml.t3.medium",
        instance_count=1,
        volume_size_gb=40,
    )


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterInstance]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
        with DagsterInstance.ephemeral() as inst:
            yield inst


def _notebook_of_materialization(instance: DagsterInstance, run_id: str) -> str:
    (entry,) = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    return entry.dagster_event.step_materialization_data.materialization.metadata["notebook_path"].value


def test_a_failed_run_leaves_the_earlier_success_intact(tmp_path: Path, model, instance: DagsterInstance) -> None:
    model_dir, home = model
    storage = tmp_path / "storage"
    backend = LocalNotebooks(home=str(home), storage=LocalStorage(root=str(storage)))

    good = run_step(backend, lambda b, ctx: b.run(ctx, plan_for(model_dir, {"ds": "2024-01-02"})), instance)
    assert good.success
    bad = run_step(
        backend, lambda b, ctx: b.run(ctx, plan_for(model_dir, {"ds": "2024-01-03", "fail": True})), instance
    )
    assert not bad.success

    linked = Path(_notebook_of_materialization(instance, good.run_id))
    nb = nbformat.read(linked, as_version=4)
    injected = "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'ds = "2024-01-02"' in injected
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # the model's usual output location still holds the successful run's files
    out = storage / "model-bucket/sagemaker-models-local/attack/partitioned/output"
    assert json.loads((out / "result.json").read_text())["ds"] == "2024-01-02"
    published = nbformat.read(out / "partitioned.ipynb", as_version=4)
    assert any('ds = "2024-01-02"' in c.source for c in published.cells)


def test_two_runs_at_once_do_not_break_each_others_lib(tmp_path: Path, model) -> None:
    model_dir, home = model
    storage = tmp_path / "storage"
    backend = LocalNotebooks(home=str(home), storage=LocalStorage(root=str(storage)))
    marker = tmp_path / "reading"
    log = logging.getLogger("two_runs")

    def context() -> Any:  # what the backend uses of a Dagster context: a run id of its own, a log
        return SimpleNamespace(run_id=str(uuid.uuid4()), retry_number=0, log=log)

    reader_ctx = context()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            plan = plan_for(model_dir, {"ds": "2024-01-02", "marker": str(marker), "seconds": 8})
            backend.run(reader_ctx, plan)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 60
    while not marker.exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), errors
    for ds in ("2024-01-03", "2024-01-04"):  # staged while the first run reads its lib/
        backend.run(context(), plan_for(model_dir, {"ds": ds}))
    thread.join(timeout=120)
    assert not errors, errors

    out = storage / "model-bucket/sagemaker-models-local/attack/partitioned/output"
    result = json.loads((out / "result_2024-01-02.json").read_text())
    assert result["ds"] == "2024-01-02" and result["reads"] > 0
    assert result["failures"] == 0, f"{result['failures']} of {result['reads']} lib reads failed"
    executed = nbformat.read(out / "runs" / reader_ctx.run_id / "partitioned.ipynb", as_version=4)
    assert any('ds = "2024-01-02"' in c.source for c in executed.cells)
