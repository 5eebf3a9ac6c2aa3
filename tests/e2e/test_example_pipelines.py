"""The shipped example pipelines, end to end through Dagster's own execution in LOCAL.

One partition of `max_ds_ViewershipFeatures` (Python script -> Glue/PySpark), then of
`max_ds_ContentForecastDaily` (image -> two notebooks -> SQL load through a stage), on the
real code location with a tmp LOCAL home and a real on-disk instance; then the image step
alone again (unchanged requirements: reused). The runs happen once per module (one Spark
run); each test checks one product of them. Expected values are recomputed from the raw
CSV the script wrote, so every hop (script -> Spark -> notebook -> warehouse) is checked
against the one before it.
"""

from __future__ import annotations

import ast
import csv
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, instance_for_test, materialize

from ml_pipelines.steps.links import notebook_view_url
from tests.factory.conftest import REPO, build_defs
from tests.factory.tiny_project import PIPELINE_ID as TINY_ID
from tests.factory.tiny_project import write_tiny_project

PARTITION = "2024-01-05"
FEATURES = "max_ds_ViewershipFeatures"
FORECAST = "max_ds_ContentForecastDaily"
DEV = "datascience-ml-pipelines-dev"

SCRIPT = AssetKey([FEATURES, "python_script_land_raw_events"])
GLUE = AssetKey([FEATURES, "glue_job_processing_script"])
IMAGE = AssetKey([FORECAST, "ecr_container_creation"])
NB_V1 = AssetKey([FORECAST, "sagemaker_notebook_job_processing_script"])
NB_V2 = AssetKey([FORECAST, "sagemaker_notebook_job_processing_script_v2"])
SQL = AssetKey([FORECAST, "write_to_snowflake"])
WAIT = AssetKey([FORECAST, "external_task_dag_status"])


@dataclass
class Runs:
    home: Path
    storage: Path  # <home>/storage: the S3 mirror
    defs: Any
    instance: DagsterInstance
    features: ExecuteInProcessResult
    forecast: ExecuteInProcessResult
    image_again: ExecuteInProcessResult
    seconds: dict[str, float]

    def metadata(self, result: ExecuteInProcessResult, key: AssetKey) -> dict[str, Any]:
        (mat,) = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
        return {k: getattr(v, "value", v) for k, v in mat.materialization.metadata.items()}

    def logs(self, result: ExecuteInProcessResult) -> list[str]:
        return [e.user_message for e in self.instance.all_logs(result.run_id) if e.user_message]

    def dev(self, rel: str) -> Path:
        return self.storage / DEV / rel


def _failure(result: ExecuteInProcessResult) -> str:
    events = result.get_step_failure_events()
    return "\n".join(e.step_failure_data.error.to_string() for e in events if e.step_failure_data.error)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    home = tmp_path_factory.mktemp("e2e") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ML_PIPELINES_STORAGE_ROOT", raising=False)  # the storage root must be <home>/storage
        defs = build_defs(REPO, home, strict=True)
        with instance_for_test() as instance:
            seconds: dict[str, float] = {}

            # The implicit asset job with an asset selection: what the UI's "Materialize", the
            # schedules and `dagster asset materialize` run.
            job = defs.resolve_implicit_global_asset_job_def()

            def run(name: str, selection: list[AssetKey], partition: str | None = PARTITION) -> ExecuteInProcessResult:
                start = time.perf_counter()
                result = job.execute_in_process(
                    asset_selection=selection, partition_key=partition, instance=instance, raise_on_error=False
                )
                seconds[name] = round(time.perf_counter() - start, 2)
                assert result.success, f"{name} failed:\n{_failure(result)}"
                return result

            features = run("features", [SCRIPT, GLUE])
            forecast = run("forecast", [IMAGE, NB_V1, NB_V2, SQL])  # the external wait is not materializable
            image_again = run("image_again", [IMAGE], partition=None)  # the image alone has no date
            print(f"\ne2e materialization wall times (s): {seconds}")
            yield Runs(home, home / "storage", defs, instance, features, forecast, image_again, seconds)


# ---------------------------------------------------------------------------------------------
# what each run materialized


def test_each_run_materializes_exactly_its_pipeline_steps(runs: Runs) -> None:
    def keys(result: ExecuteInProcessResult) -> set[AssetKey]:
        return {m.asset_key for m in result.get_asset_materialization_events()}

    assert keys(runs.features) == {SCRIPT, GLUE}
    assert keys(runs.forecast) == {IMAGE, NB_V1, NB_V2, SQL}  # the external wait is lineage only
    assert keys(runs.image_again) == {IMAGE}
    for key in (SCRIPT, GLUE, NB_V1, NB_V2, SQL):
        assert PARTITION in runs.instance.get_materialized_partitions(key)
    # the image is not a per-day thing: one unpartitioned asset, materialized by both runs
    image = runs.instance.get_latest_materialization_event(IMAGE)
    assert image.asset_materialization.partition is None and image.run_id == runs.image_again.run_id
    assert not runs.instance.get_materialized_partitions(WAIT)


# ---------------------------------------------------------------------------------------------
# the data, hop by hop


def raw_events(runs: Runs) -> list[dict[str, str]]:
    with runs.dev(f"viewership/raw_events/dt={PARTITION}/events.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_python_script_lands_raw_events_and_its_stdout_is_in_the_event_log(runs: Runs) -> None:
    rows = raw_events(runs)
    assert len(rows) == 400  # events_per_day from land_raw_events.json
    assert {r["dt"] for r in rows} == {PARTITION}
    assert {r["title_id"] for r in rows} == {f"T00{i}" for i in range(1, 9)}  # the shipped titles.csv
    assert len({r["event_id"] for r in rows}) == 400

    target = runs.dev(f"viewership/raw_events/dt={PARTITION}/events.csv")
    stdout = f"wrote 400 events for {PARTITION} (8 titles) to {target}"
    assert f"[stdout] {stdout}" in runs.logs(runs.features)
    meta = runs.metadata(runs.features, SCRIPT)
    assert meta["exit_code"] == 0 and stdout in meta["stdout_tail"]


def features_by_title(runs: Runs) -> dict[str, dict[str, Any]]:
    folder = runs.dev(f"viewership/features/daily_title_features/dt={PARTITION}")
    files = sorted(folder.glob("part-*.parquet"))
    assert len(files) == 1  # coalesce(1), one run
    rows = pq.read_table(files[0]).to_pylist()
    by_title = {r["title_id"]: r for r in rows}
    assert len(by_title) == len(rows)
    return by_title


def test_spark_output_has_one_row_per_title_matching_the_raw_events(runs: Runs) -> None:
    features = features_by_title(runs)
    events = raw_events(runs)
    views = Counter(r["title_id"] for r in events)
    minutes: dict[str, float] = defaultdict(float)
    users: dict[str, set[str]] = defaultdict(set)
    for r in events:
        minutes[r["title_id"]] += float(r["minutes_watched"])
        users[r["title_id"]].add(r["user_id"])

    assert set(features) == set(views)
    for title, row in features.items():
        assert row["views"] == views[title]
        assert row["unique_viewers"] == len(users[title])
        assert row["total_minutes"] == pytest.approx(minutes[title], abs=0.051)
        assert 0.0 <= row["tv_share"] <= 1.0
    assert sum(r["views"] for r in features.values()) == 400

    meta = runs.metadata(runs.features, GLUE)
    assert meta["job_name"] == f"{FEATURES}-glue_job_processing_script"
    assert meta["arguments"]["dt"] == PARTITION
    # the script was placed at its Glue input location
    script_copy = runs.dev("glue-models-local/Viewership_Features/daily_title_features/input/daily_title_features.py")
    assert script_copy.is_file()


def notebook_output(runs: Runs, version: str) -> Path:
    return runs.dev(f"sagemaker-models-local/Content_Forecast/ContentForecast_{version}/output")


def summary_of(executed: Path) -> dict[str, Any]:
    """The value the notebook's `summary` cell returned."""
    nb = nbformat.read(executed, as_version=4)
    (cell,) = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    (result,) = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
    return ast.literal_eval(result["data"]["text/plain"])


def forecast_rows(runs: Runs, version: str) -> list[dict[str, str]]:
    with (notebook_output(runs, version) / f"forecast_{PARTITION}.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_notebook_v1_forecast_is_the_moving_average_of_the_spark_features(runs: Runs) -> None:
    features = features_by_title(runs)
    rows = forecast_rows(runs, "V1")
    assert [r["TITLE_ID"] for r in rows] == sorted(features)
    for r in rows:
        f = features[r["TITLE_ID"]]
        assert (r["DT"], r["FORECAST_DATE"], r["MODEL_VERSION"], r["DAYS_OF_HISTORY"]) == (
            PARTITION,
            "2024-01-06",
            "v1",
            "1",
        )
        assert float(r["PREDICTED_VIEWS"]) == f["views"]  # one day of history: the mean is the day itself
        assert float(r["PREDICTED_MINUTES"]) == pytest.approx(f["total_minutes"])

    summary = summary_of(notebook_output(runs, "V1") / "ContentForecast_V1.ipynb")
    assert summary["dt"] == PARTITION and summary["env"] == "LOCAL" and summary["model_version"] == "v1"
    assert summary["titles"] == 8 and summary["days_of_history"] == 1
    assert summary["total_predicted_views"] == 400.0
    # the kernel wrote into its scratch output_dir, since removed; the file was copied out
    assert summary["output_file"].endswith(f"output/forecast_{PARTITION}.csv")
    assert not Path(summary["output_file"]).exists()


def test_notebook_v2_forecast_uses_its_own_parameter_file(runs: Runs) -> None:
    features = features_by_title(runs)
    rows = forecast_rows(runs, "V2")
    overall = sum(f["avg_minutes"] for f in features.values()) / len(features)
    assert [r["TITLE_ID"] for r in rows] == sorted(features)
    for r in rows:
        f = features[r["TITLE_ID"]]
        factor = max(
            0.0, 1.0 + 0.3 * (f["avg_minutes"] / overall - 1.0)
        )  # engagement_weight from ContentForecast_V2.json
        assert r["MODEL_VERSION"] == "v2"
        assert float(r["PREDICTED_VIEWS"]) == pytest.approx(f["views"] * factor, abs=0.006)

    executed = notebook_output(runs, "V2") / "ContentForecast_V2.ipynb"
    nb = nbformat.read(executed, as_version=4)
    injected = "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "alpha = 0.5" in injected and "engagement_weight = 0.3" in injected and f'dt = "{PARTITION}"' in injected
    summary = summary_of(executed)
    assert summary["model_version"] == "v2" and summary["titles"] == 8
    assert summary["total_predicted_views"] == pytest.approx(sum(float(r["PREDICTED_VIEWS"]) for r in rows), abs=0.05)


def test_notebook_metadata_links_the_executed_notebook(runs: Runs) -> None:
    for key, version in ((NB_V1, "V1"), (NB_V2, "V2")):
        meta = runs.metadata(runs.forecast, key)
        # the run's own executed notebook; the successful run also published it to output/
        executed = notebook_output(runs, version) / "runs" / runs.forecast.run_id / f"ContentForecast_{version}.ipynb"
        assert meta["notebook_path"] == str(executed) and Path(meta["notebook_path"]).is_file()
        assert meta["notebook"] == notebook_view_url(executed, "ml_pipelines")
        published = notebook_output(runs, version) / f"ContentForecast_{version}.ipynb"
        assert published.read_bytes() == executed.read_bytes()
        output_uri = f"s3://{DEV}/sagemaker-models-local/Content_Forecast/ContentForecast_{version}/output/"
        assert meta["output_uri"] == output_uri
        assert f"{output_uri}forecast_{PARTITION}.csv" in meta["output_files"]
        assert meta["duration_s"] > 0


def test_warehouse_table_holds_the_v1_forecast(runs: Runs) -> None:
    v1 = {r["TITLE_ID"]: r for r in forecast_rows(runs, "V1")}
    warehouse = runs.defs.resources["warehouse"]
    with warehouse.snowflake_resource() as resource, resource.get_connection() as conn:
        cur = conn.cursor()
        cur.execute(
            "SELECT DT, FORECAST_DATE, TITLE_ID, PREDICTED_VIEWS, PREDICTED_MINUTES, DAYS_OF_HISTORY, MODEL_VERSION "
            "FROM ML_PIPELINES.FORECASTS.CONTENT_FORECAST_DAILY ORDER BY TITLE_ID"
        )
        rows = cur.fetchall()
    assert [r[2] for r in rows] == sorted(v1)
    for dt, forecast_date, title, views, minutes, days, version in rows:
        assert (str(dt), str(forecast_date), days, version) == (PARTITION, "2024-01-06", 1, "v1")
        assert float(views) == float(v1[title]["PREDICTED_VIEWS"])
        assert float(minutes) == pytest.approx(float(v1[title]["PREDICTED_MINUTES"]))

    meta = runs.metadata(runs.forecast, SQL)
    assert meta["table_row_counts"] == {"ML_PIPELINES.FORECASTS.CONTENT_FORECAST_DAILY": 8}
    copy = [s for s in meta["statements"] if s["statement"].startswith("COPY INTO")]
    assert [s["rowcount"] for s in copy] == [8]


# ---------------------------------------------------------------------------------------------
# the image step


def test_image_step_builds_once_then_reuses(runs: Runs) -> None:
    first = runs.metadata(runs.forecast, IMAGE)
    again = runs.metadata(runs.image_again, IMAGE)
    assert first["status"] == "built"
    assert again["status"] == "reused"
    assert again["env_path"] == first["env_path"] and again["content_hash"] == first["content_hash"]
    assert again["duration_s"] < 1.0
    assert first["requirements"] == ["pandas", "pyarrow"]
    # the notebooks ran on that env's kernel, registered under the env, not in the user's home
    kernel = runs.metadata(runs.forecast, NB_V1)["kernel_name"]
    assert kernel == first["kernel_name"]
    assert (Path(first["env_path"]) / "share" / "jupyter" / "kernels" / kernel / "kernel.json").is_file()
    print(f"\nimage step: built in {first['duration_s']}s, reused in {again['duration_s']}s")


# ---------------------------------------------------------------------------------------------
# a failing step through the factory

FAILING_SCRIPT = """\
import sys
print("stdout before failing")
for i in range(40):
    print(f"stderr line {i}", file=sys.stderr)
sys.exit(3)
"""


def test_failing_script_fails_the_run_naming_the_step_with_the_stderr_tail(tmp_path: Path) -> None:
    project = write_tiny_project(tmp_path / "project")
    (project / "Py_Models" / "echo.py").write_text(FAILING_SCRIPT)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ML_PIPELINES_STORAGE_ROOT", raising=False)
        defs = build_defs(project, tmp_path / "home", strict=True)
    key = AssetKey([TINY_ID, "python_script_echo"])
    with instance_for_test() as instance:
        result = materialize(
            [defs.get_assets_def(key)],
            partition_key="2024-01-03",
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        (event,) = result.get_step_failure_events()
        message = event.step_failure_data.error.message
        assert "step python_script_echo failed" in message
        assert "echo.py exited with code 3" in message
        assert "stderr line 39" in message and "stderr line 10" in message  # the last 30 lines...
        assert "stderr line 9\n" not in message  # ...only
        logs = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]
        assert "[stdout] stdout before failing" in logs
        assert not instance.get_materialized_partitions(key)
