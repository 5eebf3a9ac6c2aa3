import json
from datetime import date, datetime, timezone

import pytest

from ml_pipelines.cli_plan import plan_as_dict
from ml_pipelines.config.parameters import ParameterFileError
from ml_pipelines.config.schema import BucketConfig
from ml_pipelines.config.templates import TemplateRenderError
from ml_pipelines.config.variables import Variables, load_variables
from ml_pipelines.plan import PlanError, image_plan, is_noop_step, plan_step, step_code_version, window_for
from ml_pipelines.plan.model import (
    ContainerImagePlan,
    ExternalWaitPlan,
    GluePlan,
    NotebookPlan,
    PythonScriptPlan,
    SqlPlan,
    TimeWindow,
)
from ml_pipelines.plan.storage_layout import LOCAL_DEFAULT_BUCKET, model_bucket

from .conftest import PIPELINE_ID, build_project

UTC = timezone.utc
WINDOW = TimeWindow(start=datetime(2024, 1, 31, 6, tzinfo=UTC), end=datetime(2024, 2, 1, 6, tzinfo=UTC))
NOTEBOOK = "sagemaker_notebook_job_processing_script"


def plan(project, step, env, *, pipeline_id=PIPELINE_ID, window=WINDOW, variables=None, storage_root=None, now=None):
    paths = project.paths
    variables = variables if variables is not None else load_variables(paths.model_configs, env, environ={})
    return plan_step(
        project.pipeline(pipeline_id),
        step,
        env,
        window,
        paths=paths,
        variables=variables,
        storage_root=storage_root,
        now=now,
    )


# -- notebooks -----------------------------------------------------------------------------
def test_notebook_local(project_root, load, tmp_path):
    project = load(project_root, "LOCAL")
    storage = tmp_path / "store"
    p = plan(project, NOTEBOOK, "LOCAL", storage_root=storage)
    assert isinstance(p, NotebookPlan)
    assert p.run.pipeline_id == PIPELINE_ID and p.run.step_name == NOTEBOOK and p.run.env == "LOCAL"
    assert p.run.window == WINDOW
    model = project_root / "Sagemaker_Models" / "demo"
    assert p.notebook == model / "Forecast.ipynb" and p.model_dir == model
    assert p.lib_dir == model / "lib" and p.parameter_file == model / "parameters.json"
    # LOCAL has no bucket entry: the DEV bucket, under the local mirror
    assert p.input_uri == "s3://dev-bucket/sagemaker-models-local/demo/Forecast/input/"
    assert p.output_uri == "s3://dev-bucket/sagemaker-models-local/demo/Forecast/output/"
    base = storage.resolve()
    assert p.parameters == {
        "top_n": 25,
        "flags": {"a": True},
        "input_path": str(base / "dev-data" / "in") + "/",
        "dates": [str(base / "dev-data" / "d1")],
        "dt": "2024-02-01",
        "stage": "ci_stage",
        "ENV": "LOCAL",
    }
    assert (p.instance_type, p.instance_count, p.volume_size_gb) == ("ml.m5.xlarge", 2, 40)
    assert isinstance(p.image, ContainerImagePlan)
    assert p.image.kernel == "python3" and p.image.requirements_file == model / "requirements.txt"
    assert p.image.dockerfile == project_root / "containers" / "python3" / "Dockerfile"
    assert p.image.image_name == f"{PIPELINE_ID}-python3"


def test_local_needs_a_storage_root(project_root, load):
    with pytest.raises(PlanError, match=f"step {NOTEBOOK} of {PIPELINE_ID}: LOCAL needs a storage root"):
        plan(load(project_root, "LOCAL"), NOTEBOOK, "LOCAL", storage_root=None)


@pytest.mark.parametrize("env, bucket", [("DEV", "dev-bucket"), ("BETA", "beta-bucket"), ("PROD", "prod-bucket")])
def test_notebook_cloud_envs(project_root, load, env, bucket):
    project = load(project_root, env)
    p = plan(project, NOTEBOOK, env)
    lower = env.lower()
    assert p.input_uri == f"s3://{bucket}/sagemaker-models-{lower}/demo/Forecast/input/"
    assert p.output_uri == f"s3://{bucket}/sagemaker-models-{lower}/demo/Forecast/output/"
    assert p.parameters["input_path"] == f"s3://{lower if env != 'PROD' else 'prod'}-data/in/"
    assert p.parameters["stage"] == ("ci_stage_prod" if env == "PROD" else "ci_stage")
    assert p.parameters["ENV"] == env


def test_blank_prod_bucket_is_a_plan_error(tmp_path, load):
    root = build_project(tmp_path / "p", prod_bucket="")
    project = load(root, "DEV")  # valid for DEV; PROD would be rejected at load time
    with pytest.raises(
        PlanError,
        match=r"step sagemaker_notebook_job_processing_script of ds_demo_daily: BucketIOConfig.PROD.model_bucket is blank",
    ):
        plan(project, NOTEBOOK, "PROD")
    assert plan(project, NOTEBOOK, "DEV").input_uri.startswith("s3://dev-bucket/")


def test_model_bucket_rules():
    buckets = {
        "LOCAL": BucketConfig(model_bucket="loc"),
        "DEV": BucketConfig(model_bucket="dev"),
        "PROD": BucketConfig(model_bucket=" "),
    }
    assert model_bucket(buckets, "LOCAL", where="s") == "loc"
    assert model_bucket({"DEV": BucketConfig(model_bucket="dev")}, "LOCAL", where="s") == "dev"
    assert model_bucket({"DEV": BucketConfig(model_bucket="")}, "LOCAL", where="s") == LOCAL_DEFAULT_BUCKET
    assert model_bucket({}, "local", where="s") == LOCAL_DEFAULT_BUCKET
    assert model_bucket(buckets, "DEV", where="s") == "dev"
    for env in ("BETA", "PROD"):
        with pytest.raises(PlanError, match=f"BucketIOConfig.{env}.model_bucket is blank"):
            model_bucket(buckets, env, where="s")


def test_notebook_without_image_step_local_section_and_default_bucket(project_root, load, tmp_path):
    project = load(project_root, "LOCAL")
    p = plan(
        project,
        "sagemaker_notebook_job_processing_script_v2",
        "LOCAL",
        pipeline_id="ds_noimage_run",
        storage_root=tmp_path,
    )
    assert p.input_uri == f"s3://{LOCAL_DEFAULT_BUCKET}/sagemaker-models-local/demo/Forecast/input/"
    assert p.parameter_file.name == "local_params.json"
    assert p.parameters == {"x": 1, "where": "/tmp/x", "ENV": "LOCAL"}  # LOCAL section, as written
    model = project_root / "Sagemaker_Models" / "demo"
    assert p.image.kernel == "python3" and p.image.requirements_file == model / "requirements.txt"
    (model / "requirements.txt").unlink()
    assert image_plan(project.pipeline("ds_noimage_run"), "LOCAL", project.paths).requirements_file is None


def test_missing_variable_names_step_key_env(project_root, load):
    project = load(project_root, "PROD")
    with pytest.raises(TemplateRenderError) as exc:
        plan(project, NOTEBOOK, "PROD", variables=Variables(values={}, env="PROD"))
    msg = str(exc.value)
    assert msg.startswith(f"step {NOTEBOOK}, templates_dict.stage: ")
    assert "'CI_STAGING'" in msg and "PROD" in msg and "ML_PIPELINES_VAR_CI_STAGING" in msg


def test_bad_parameter_file_at_plan_time(project_root, load):
    project = load(project_root, "DEV")
    (project_root / "Sagemaker_Models" / "demo" / "parameters.json").write_text('{"DEV": {,}}')
    with pytest.raises(ParameterFileError, match=r"parameters.json:1: invalid JSON"):
        plan(project, NOTEBOOK, "DEV")


def test_empty_notebook_name_is_a_noop(project_root, load):
    project = load(project_root, "DEV")
    adhoc = project.pipeline("ds_adhoc_run")
    assert is_noop_step(adhoc, NOTEBOOK)
    assert not is_noop_step(project.pipeline(PIPELINE_ID), NOTEBOOK)
    with pytest.raises(PlanError, match="notebook_name is empty"):
        plan(project, NOTEBOOK, "DEV", pipeline_id="ds_adhoc_run", window=None)


# -- Glue ------------------------------------------------------------------------------------
def test_glue_model_script(project_root, load):
    project = load(project_root, "DEV")
    p = plan(project, "glue_job_processing_script", "DEV")
    assert isinstance(p, GluePlan)
    g = project_root / "Glue_Models" / "gmodel"
    assert p.job_name == f"{PIPELINE_ID}-glue_job_processing_script"
    assert p.script == g / "etl.py" and p.script_dir == g and p.lib_dir == g / "lib"
    assert p.jars == (g / "jars" / "dep.jar",) and p.py_files == ()
    assert p.arguments == {"table": "events", "out": "s3://dev-data/out/", "dt": "2024-01-31"}
    assert (p.worker_type, p.number_of_workers) == ("G.2X", 10)
    base = "s3://dev-bucket/glue-models-dev/gmodel/etl/"
    assert (p.base_uri, p.input_uri, p.lib_uri, p.jar_uri, p.temp_uri) == (
        base,
        base + "input/",
        base + "lib/",
        base + "jar/",
        base + "temp/",
    )
    assert p.common_input_uris == {}


def test_glue_model_script_local_maps_s3_arguments(project_root, load, tmp_path):
    p = plan(load(project_root, "LOCAL"), "glue_job_processing_script", "LOCAL", storage_root=tmp_path)
    assert p.arguments["out"] == str(tmp_path.resolve() / "dev-data" / "out") + "/"
    assert p.base_uri == "s3://dev-bucket/glue-models-local/gmodel/etl/"


def test_glue_common_script(project_root, load):
    p = plan(load(project_root, "PROD"), "glue_job_processing_script_common", "PROD")
    common = project_root / "Glue_Models" / "common"
    assert p.script == common / "shared.py" and p.script_dir == common / "shared"
    assert p.py_files == (common / "shared" / "extra.py",)
    assert p.arguments == {"mode": "full"}
    assert (p.worker_type, p.number_of_workers) == ("G.1X", 2)
    base = "s3://prod-bucket/glue-models-prod/gmodel/shared/"
    assert p.input_uri == base + "input/"
    assert p.common_input_uris == {
        "common_lib": base + "input/common_lib/",
        "common_jars": base + "input/common_jars/",
        "pub_dependencies": base + "input/pub_dependencies/",
        "common_py_files": base + "input/common_py_files/",
    }


def test_glue_without_glue_model_name_uses_common_folder():
    from ml_pipelines.plan.storage_layout import glue_uris

    assert glue_uris("b", "BETA", None, "s", common=True)["base"] == "s3://b/glue-models-beta/common/s/"


# -- Python scripts --------------------------------------------------------------------------
def test_python_script_common(project_root, load):
    p = plan(load(project_root, "BETA"), "python_script_check", "BETA")
    assert isinstance(p, PythonScriptPlan)
    assert p.script == project_root / "Py_Models" / "check.py"
    assert p.script_dir == project_root / "Py_Models" / "check"
    assert p.arguments == {"threshold": "0.5", "cols": '["a", "b"]', "env": "BETA"}


def test_python_script_model(project_root, load):
    p = plan(load(project_root, "DEV"), "python_script_model", "DEV")
    model = project_root / "Sagemaker_Models" / "demo"
    assert p.script == model / "python_scripts" / "validate.py" and p.script_dir == model
    assert p.lib_dir == model / "lib" and p.requirements_file == model / "requirements.txt"
    assert p.arguments == {"strict": "True"}  # COMMON-only file; str() of scalars


# -- SQL -------------------------------------------------------------------------------------
def test_sql(project_root, load):
    p = plan(load(project_root, "DEV"), "write_to_snowflake", "DEV")
    assert isinstance(p, SqlPlan)
    assert p.schema == "ANALYTICS"
    assert p.connection == {"account": "acct", "warehouse": "wh", "database": "DB", "role": "ROLE"}
    assert [f.name for f in p.files] == ["load.sql", "merge"]
    assert p.files[1].path == project_root / "Sagemaker_Models" / "demo" / "pipeline" / "merge.sql"
    assert p.files[0].text == "insert into t_20240201 select '2024-02-01', '2024', '2024-01-31';\n"
    assert p.files[1].text == "merge into t using s on t.d = '2024-01-30';\n"


def test_sql_undefined_names_step_and_file(project_root, load):
    project = load(project_root, "DEV")
    (project_root / "Sagemaker_Models" / "demo" / "pipeline" / "merge.sql").write_text("select {{ dtt }}")
    with pytest.raises(TemplateRenderError, match=r"^step write_to_snowflake, merge: undefined: 'dtt' is undefined"):
        plan(project, "write_to_snowflake", "DEV")


# -- external wait, images -------------------------------------------------------------------
def test_external_wait(project_root, load):
    p = plan(load(project_root, "DEV"), "external_task_dag_status", "DEV")
    assert p == ExternalWaitPlan(
        run=p.run,
        external_pipeline_id="other_pipeline",
        external_step_name=None,
        allowed_states=("success", "failed"),
        poke_interval_s=300.0,
        timeout_s=60.0,
        mode="reschedule",
        execution_delta_s=5400.0,
    )


def test_image_step(project_root, load):
    project = load(project_root, "DEV")
    p = plan(project, "ecr_container_creation", "DEV")
    assert isinstance(p, ContainerImagePlan)
    model = project_root / "Sagemaker_Models" / "demo"
    assert p.kernel == "python3" and p.model_dir == model
    assert p.requirements_file == model / "requirements.txt"
    assert p.dockerfile == project_root / "containers" / "python3" / "Dockerfile"
    assert p.content_hash == step_code_version(project.pipeline(PIPELINE_ID), "ecr_container_creation", project.paths)
    assert len(p.content_hash) == 16
    assert image_plan(project.pipeline(PIPELINE_ID), "DEV", project.paths) == image_plan(
        project.pipeline(PIPELINE_ID), "DEV", project.paths, step_name="ecr_container_creation"
    )


# -- windows ---------------------------------------------------------------------------------
def _utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "schedule, day, start, end",
    [
        ("@daily", date(2024, 1, 31), _utc(2024, 1, 31), _utc(2024, 2, 1)),
        ("0 6 * * *", date(2024, 1, 31), _utc(2024, 1, 31, 6), _utc(2024, 2, 1, 6)),
        ("@weekly", date(2024, 1, 31), _utc(2024, 1, 28), _utc(2024, 2, 4)),  # the week holding a Wednesday
        ("0 0 * * SUN", date(2024, 1, 28), _utc(2024, 1, 28), _utc(2024, 2, 4)),
        ("@monthly", date(2024, 2, 15), _utc(2024, 2, 1), _utc(2024, 3, 1)),
        ("@yearly", date(2024, 6, 1), _utc(2024, 1, 1), _utc(2025, 1, 1)),
        ("@hourly", date(2024, 1, 31), _utc(2024, 1, 31), _utc(2024, 1, 31, 1)),
        ("*/15 3 * * *", date(2024, 1, 31), _utc(2024, 1, 31, 3), _utc(2024, 1, 31, 3, 15)),
        ("30 2 * * 1-5", date(2024, 2, 2), _utc(2024, 2, 2, 2, 30), _utc(2024, 2, 5, 2, 30)),  # Fri -> Mon
        ("0 0 1,15 * *", date(2024, 2, 10), _utc(2024, 2, 1), _utc(2024, 2, 15)),
    ],
)
def test_window_for(schedule, day, start, end):
    assert window_for(schedule, date(2020, 1, 1), day) == TimeWindow(start=start, end=end)


@pytest.mark.parametrize("schedule", [None, "@once"])
def test_window_for_unpartitioned(schedule):
    assert window_for(schedule, date(2020, 1, 1), date(2024, 1, 31)) is None
    assert window_for("@daily", None, date(2024, 1, 31)) is None  # no start_date: unpartitioned, like the factory


def test_window_before_start_date():
    with pytest.raises(PlanError, match="before the first partition"):
        window_for("@daily", date(2024, 1, 2), date(2024, 1, 1))


@pytest.mark.parametrize(
    "cron", ["0 0 * * *", "0 6 * * *", "0 0 * * 0", "0 0 1 * *", "15 4 * * 1-5", "0 0 1,15 * *", "0 */6 * * *"]
)
def test_windows_match_dagster_partitions(cron):
    from dagster import TimeWindowPartitionsDefinition

    start = datetime(2023, 12, 1, tzinfo=UTC)
    fmt = "%Y-%m-%d-%H:%M"
    partitions = TimeWindowPartitionsDefinition(cron_schedule=cron, start=start, fmt=fmt, timezone="UTC")
    keys = partitions.get_partition_keys(current_time=datetime(2024, 3, 10, tzinfo=UTC))
    checked = 0
    for key in keys:
        window = partitions.time_window_for_partition_key(key)
        ours = window_for(cron, start.date(), window.start.date())
        if ours.start == window.start:  # the first window of that day
            assert (ours.start, ours.end) == (window.start, window.end), key
            checked += 1
    assert checked > 0


def test_unpartitioned_run_uses_now(project_root, load):
    project = load(project_root, "DEV")
    p = plan(project, "python_script_check", "DEV", pipeline_id="ds_adhoc_run", window=None, now=_utc(2023, 5, 6, 13))
    assert p.arguments["day"] == "2023-05-06"
    p = plan(project, "python_script_check", "DEV", pipeline_id="ds_adhoc_run", window=None)
    assert p.arguments["day"] == datetime.now(UTC).date().isoformat()


# -- plan_as_dict ----------------------------------------------------------------------------
def test_plan_as_dict(project_root, load):
    project = load(project_root, "DEV")
    out = plan_as_dict(project, PIPELINE_ID, "dev", date(2024, 1, 31), storage_root=None)
    text = json.dumps(out)  # JSON-serialisable
    assert json.loads(text) == out
    assert out["pipeline_id"] == PIPELINE_ID and out["env"] == "DEV" and out["schedule"] == "0 6 * * *"
    assert out["window"] == {"start": "2024-01-31T06:00:00+00:00", "end": "2024-02-01T06:00:00+00:00"}
    steps = {s["name"]: s for s in out["steps"]}
    assert set(steps) == {t.name for t in project.pipeline(PIPELINE_ID).config.tasks}
    for s in out["steps"]:
        for key in ("name", "kind", "asset_key", "deps", "code_version", "parameters", "templates", "storage"):
            assert key in s, (s["name"], key)
        assert s["asset_key"] == [PIPELINE_ID, s["name"]]
        assert {"input", "output"} <= set(s["storage"])
    order = [s["name"] for s in out["steps"]]
    for s in out["steps"]:  # steps come after their upstream steps
        for dep in s["deps"]:
            assert order.index(dep[1]) < order.index(s["name"])
    nb = steps[NOTEBOOK]
    assert nb["kind"] == "notebook" and nb["deps"] == [[PIPELINE_ID, "ecr_container_creation"]]
    assert nb["templates"] == {"dt": "2024-02-01", "stage": "ci_stage"}
    assert nb["parameters"]["ENV"] == "DEV" and nb["parameters"]["top_n"] == 25
    assert nb["storage"] == {
        "input": "s3://dev-bucket/sagemaker-models-dev/demo/Forecast/input/",
        "output": "s3://dev-bucket/sagemaker-models-dev/demo/Forecast/output/",
    }
    assert nb["notebook"] == str(project_root / "Sagemaker_Models" / "demo" / "Forecast.ipynb")
    assert nb["image"]["kernel"] == "python3"
    assert steps["write_to_snowflake"]["files"][0]["text"].startswith("insert into t_20240201")
    assert steps["glue_job_processing_script"]["arguments"]["dt"] == "2024-01-31"
    assert steps["external_task_dag_status"]["kind"] == "external_wait"
    assert nb["code_version"] == step_code_version(project.pipeline(PIPELINE_ID), NOTEBOOK, project.paths)


def test_plan_as_dict_unpartitioned_uses_the_date(project_root, load):
    out = plan_as_dict(load(project_root, "DEV"), "ds_adhoc_run", "DEV", date(2022, 2, 2), storage_root=None)
    assert out["window"] is None and out["schedule"] is None
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[NOTEBOOK]["noop"] is True
    assert steps["python_script_check"]["templates"] == {"day": "2022-02-02"}
    json.dumps(out)


def test_plan_as_dict_unknown_pipeline(project_root, load):
    with pytest.raises(PlanError, match="did you mean ds_demo_daily"):
        plan_as_dict(load(project_root, "DEV"), "ds_demo_dialy", "DEV", None, storage_root=None)
