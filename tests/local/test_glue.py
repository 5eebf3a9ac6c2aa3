"""LOCAL Glue backend: real local PySpark in a subprocess, run through Dagster."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetExecutionContext, DagsterInstance, ExecuteInProcessResult

from ml_pipelines.local.glue import LocalGlue
from ml_pipelines.local.python_script import CapturingPipesSubprocessClient
from ml_pipelines.local.storage import LocalStorage, s3_to_local
from ml_pipelines.plan.model import GluePlan
from ml_pipelines.steps import StepOutcome

from .fixtures.helpers import FIXTURES, failure_text, log_messages, run_identity, run_step, shared_home, step_metadata

GLUE_MODEL = FIXTURES / "glue_models" / "demo_glue"
BASE_URI = "s3://models-bkt/glue-models-local/demo_glue/sales_etl/"
SALES_CSV = "id,region,amount\n1,north,5.0\n2,south,12.5\n3,north,40.0\n4,east,10.0\n"


@pytest.fixture()
def backend(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalGlue:
    # shared home: the step env (python3, no requirements) is built once per session
    return LocalGlue(
        home=str(shared_home(tmp_path_factory)),
        storage=LocalStorage(root=str(tmp_path / "storage")),
        pipes=CapturingPipesSubprocessClient(),
        spark_master="local[1]",
    )


def glue_plan(script: str, arguments: dict[str, str], jars: tuple[Path, ...] = ()) -> GluePlan:
    return GluePlan(
        run=run_identity("glue_job_processing_script"),
        job_name=f"demo_glue-{script}",
        script=GLUE_MODEL / f"{script}.py",
        script_dir=GLUE_MODEL,
        lib_dir=GLUE_MODEL / "lib",
        jars=jars,
        py_files=(GLUE_MODEL / "py_files" / "rates.py",),
        requirements_file=None,
        arguments=arguments,
        worker_type="G.1X",
        number_of_workers=2,
        base_uri=BASE_URI,
        input_uri=BASE_URI + "input/",
        lib_uri=BASE_URI + "lib/",
        jar_uri=BASE_URI + "jar/",
        temp_uri=BASE_URI + "temp/",
    )


def run_glue(backend: LocalGlue, plan: GluePlan, instance: DagsterInstance) -> ExecuteInProcessResult:
    def call(b: LocalGlue, ctx: AssetExecutionContext) -> StepOutcome:
        return b.run(ctx, plan)

    return run_step(backend, call, instance)


def test_glue_script_reads_csv_and_writes_parquet(
    backend: LocalGlue, instance: DagsterInstance, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    csv = s3_to_local("s3://data-bkt/in/sales/2024-01-01.csv", storage)
    csv.parent.mkdir(parents=True)
    csv.write_text(SALES_CSV)
    jar = tmp_path / "jars" / "empty-udfs.jar"
    jar.parent.mkdir()
    with zipfile.ZipFile(jar, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    plan = glue_plan(
        "sales_etl",
        {"input_path": "s3://data-bkt/in/sales/", "output_path": "s3://data-bkt/out/big_sales/", "min_amount": "10"},
        jars=(jar,),
    )

    result = run_glue(backend, plan, instance)

    assert result.success, failure_text(result)
    table = pq.read_table(s3_to_local("s3://data-bkt/out/big_sales/", storage))
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": 2, "region": "south", "amount": 12.5, "amount_eur": 6.25},
        {"id": 3, "region": "north", "amount": 40.0, "amount_eur": 20.0},
        {"id": 4, "region": "east", "amount": 10.0, "amount_eur": 5.0},
    ]
    meta = step_metadata(result)
    assert meta["job_name"] == "demo_glue-sales_etl"
    assert meta["arguments"] == {
        "JOB_NAME": "demo_glue-sales_etl",
        "TempDir": BASE_URI + "temp/",
        "input_path": "s3://data-bkt/in/sales/",
        "output_path": "s3://data-bkt/out/big_sales/",
        "min_amount": "10",
    }
    assert meta["output_files"]["output_path"] and all(
        u.startswith("s3://data-bkt/out/big_sales/part-") for u in meta["output_files"]["output_path"]
    )
    assert meta["duration_s"] > 0
    # script, lib and jars are where the job would find them on S3
    for uri in (
        BASE_URI + "input/sales_etl.py",
        BASE_URI + "lib/glue_helpers.py",
        BASE_URI + "lib/rates.py",
        BASE_URI + "jar/empty-udfs.jar",
    ):
        assert uri in meta["uploaded"] and s3_to_local(uri, storage).is_file()
    # the script's stdout and the Glue logger reach the Dagster log
    logs = "\n".join(log_messages(instance, result))
    assert "wrote 3 rows; master=local[1]" in logs
    assert str(jar) in logs  # --jars reached SparkContext
    assert "GlueLogger: read 4 sales rows" in logs
    assert f"TempDir={BASE_URI}temp/" in logs


def test_unsupported_glue_call_fails_with_clear_message(backend: LocalGlue, instance: DagsterInstance) -> None:
    result = run_glue(backend, glue_plan("catalog_read", {}), instance)

    assert not result.success
    text = failure_text(result)
    assert "Glue job demo_glue-catalog_read (catalog_read.py) failed with exit code 1" in text
    assert "Traceback (most recent call last)" in text
    assert "catalog_read.py" in text  # the failing line of the script
    assert (
        "UnsupportedInLocalAttribute: GlueContext.create_dynamic_frame.from_catalog is not supported in LOCAL" in text
    )
    assert "implements only this subset" in text
    assert "StepPreconditionFailed" in text  # every attempt would fail the same way: not retried


def test_missing_glue_argument_fails_before_spark(backend: LocalGlue, instance: DagsterInstance) -> None:
    result = run_glue(backend, glue_plan("sales_etl", {"input_path": "s3://data-bkt/in/"}), instance)

    assert not result.success
    text = failure_text(result)
    assert "exit code 1" in text
    assert "GlueArgumentError: the following arguments are required: --output_path, --min_amount" in text
