"""Project paths and the file lookup rules of each step kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_pipelines.config.paths import (
    PRODUCT_CONTAINERS,
    ProjectPaths,
    StepFiles,
    StepFilesError,
    project_root,
    resolve_step_files,
)
from ml_pipelines.config.schema import PipelineConfig

from .conftest import FixtureProject


def pipeline(**overrides) -> PipelineConfig:
    raw = {"domain": "d", "sub_domain": "s", "action": "a", "model_name": "Forecast", "glue_model_name": "movies"}
    raw.update(overrides)
    return PipelineConfig.model_validate(raw)


def files_of(project: FixtureProject, task: dict, **overrides) -> StepFiles:
    config = pipeline(tasks=[task], **overrides)
    return resolve_step_files(ProjectPaths.for_root(project.root), config, config.tasks[0])


def problems_of(project: FixtureProject, task: dict, **overrides) -> list[tuple[tuple, str, bool]]:
    with pytest.raises(StepFilesError) as info:
        files_of(project, task, **overrides)
    return [(p.field, p.message, p.pipeline_level) for p in info.value.problems]


def test_project_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, from_env, cwd = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (explicit, from_env, cwd):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("ML_PIPELINES_PROJECT_DIR", raising=False)
    assert project_root() == cwd.resolve()
    monkeypatch.setenv("ML_PIPELINES_PROJECT_DIR", str(from_env))
    assert project_root() == from_env.resolve()
    assert project_root(explicit) == explicit.resolve()
    assert project_root(str(explicit)) == explicit.resolve()


def test_project_paths(project: FixtureProject) -> None:
    paths = ProjectPaths.for_root(project.root)
    root = project.root.resolve()
    assert paths.root == root
    assert paths.model_configs == root / "model_configs"
    assert paths.sagemaker_models == root / "Sagemaker_Models"
    assert paths.glue_models == root / "Glue_Models"
    assert paths.py_models == root / "Py_Models"
    # no containers/ in the project: the product's own
    assert paths.containers == PRODUCT_CONTAINERS
    assert PRODUCT_CONTAINERS.parent == Path(__file__).resolve().parents[2]
    (project.root / "containers").mkdir()
    assert ProjectPaths.for_root(project.root).containers == root / "containers"


def test_notebook_suffix_is_optional(project: FixtureProject) -> None:
    with_suffix = files_of(
        project, {"name": "sagemaker_notebook_job_processing_script", "notebook_name": "DailyForecast.ipynb"}
    )
    without = files_of(project, {"name": "sagemaker_notebook_job_processing_script", "notebook_name": "DailyForecast"})
    assert with_suffix == without
    assert without.main.name == "DailyForecast.ipynb"
    assert without.parameter_file.name == "parameters.json"  # the default, present
    assert without.requirements_file is None  # no container step in this pipeline


def test_empty_notebook_name_is_no_notebook(project: FixtureProject) -> None:
    files = files_of(
        project, {"name": "sagemaker_notebook_job_processing_script", "notebook_name": ""}, model_name=None
    )
    assert files.main is None and files.model_dir is None


def test_default_files_absent_are_none(project: FixtureProject) -> None:
    project.remove("Sagemaker_Models/Forecast/parameters.json")
    project.remove("Sagemaker_Models/Forecast/requirements.txt")
    config = pipeline(
        tasks=[
            {"name": "ecr_container_creation", "kernel": "python3"},
            {
                "name": "sagemaker_notebook_job_processing_script",
                "notebook_name": "DailyForecast",
                "upstream_task_name": "ecr_container_creation",
            },
        ]
    )
    paths = ProjectPaths.for_root(project.root)
    container = resolve_step_files(paths, config, config.tasks[0])
    notebook = resolve_step_files(paths, config, config.tasks[1])
    assert (
        container.requirements_file is None and notebook.parameter_file is None and notebook.requirements_file is None
    )


def test_container_dockerfile_and_requirements(project: FixtureProject) -> None:
    project.write("containers/python3/Dockerfile", "FROM python:3.11-slim\n")
    project.write("Sagemaker_Models/Forecast/gpu.txt", "torch\n")
    config = pipeline(
        tasks=[
            {"name": "ecr_container_creation", "kernel": "python3", "requirements_file_name": "gpu"},
            {"name": "sagemaker_notebook_job_processing_script", "notebook_name": "DailyForecast"},
        ]
    )
    paths = ProjectPaths.for_root(project.root)
    container = resolve_step_files(paths, config, config.tasks[0])
    root = project.root.resolve()
    assert container.dockerfile == root / "containers/python3/Dockerfile"
    assert container.requirements_file == root / "Sagemaker_Models/Forecast/gpu.txt"
    assert container.model_dir == root / "Sagemaker_Models/Forecast"
    notebook = resolve_step_files(paths, config, config.tasks[1])
    assert notebook.requirements_file == container.requirements_file
    assert notebook.dockerfile == container.dockerfile


def test_container_step_without_a_model(project: FixtureProject) -> None:
    files = files_of(project, {"name": "ecr_container_creation", "kernel": "python3"}, model_name="")
    assert files.model_dir is None and files.requirements_file is None


def test_glue_model_files_and_jars(project: FixtureProject) -> None:
    project.write("Glue_Models/movies/jars/b.jar", b"PK")
    project.write("Glue_Models/movies/jars/a.jar", b"PK")
    project.write("Glue_Models/movies/jars/notes.txt", "not a jar")
    files = files_of(
        project,
        {"name": "glue_job_processing_script", "Details": {"script_name": "movies-test", "script_loc": "model"}},
    )
    movies = project.root.resolve() / "Glue_Models/movies"
    assert files.main == movies / "movies-test.py"
    assert files.jars == (movies / "jars/a.jar", movies / "jars/b.jar")
    assert files.py_files == ()


def test_glue_common_script_files(project: FixtureProject) -> None:
    project.write("Glue_Models/common/shared_dedupe/jars/x.jar", b"PK")
    project.write("Glue_Models/common/shared_dedupe/py_files/extra.py", "X = 1\n")
    files = files_of(
        project,
        {"name": "glue_job_processing_script_x", "Details": {"script_name": "shared_dedupe", "script_loc": "common"}},
    )
    common = project.root.resolve() / "Glue_Models/common"
    assert files.main == common / "shared_dedupe.py"
    assert files.jars == (common / "shared_dedupe/jars/x.jar",)
    assert files.py_files == (common / "shared_dedupe/helpers.py", common / "shared_dedupe/py_files/extra.py")


def test_glue_common_named_parameter_file_needs_the_folder(project: FixtureProject) -> None:
    project.write("Glue_Models/common/lonely.py", "print(1)\n")
    problems = problems_of(
        project,
        {
            "name": "glue_job_processing_script",
            "Details": {"script_name": "lonely", "script_loc": "common", "param_file_name": "p"},
        },
    )
    assert problems == [
        (
            ("Details", "param_file_name"),
            "parameter file 'p' is named, but its folder Glue_Models/common/lonely does not exist",
            False,
        )
    ]


def test_python_script_in_a_sagemaker_model(project: FixtureProject) -> None:
    files = files_of(
        project,
        {"name": "python_script_x", "model_type": "sagemaker", "script_loc": "model", "script_name": "check_output.py"},
    )
    forecast = project.root.resolve() / "Sagemaker_Models/Forecast"
    assert files.main == forecast / "python_scripts/check_output.py"
    assert files.parameter_file == forecast / "parameters.json"
    assert files.requirements_file == forecast / "requirements.txt"


def test_sql_from_the_glue_model(project: FixtureProject) -> None:
    files = files_of(project, {"name": "write_to_snowflake", "model_type": "glue", "sql_file_names": "load_movies"})
    assert files.sql_files == (project.root.resolve() / "Glue_Models/movies/pipeline/load_movies.sql",)


def test_every_problem_of_a_step_is_reported(project: FixtureProject) -> None:
    problems = problems_of(
        project,
        {
            "name": "sagemaker_notebook_job_processing_script",
            "notebook_name": "Missing",
            "param_file_name": "/abs/params",
        },
    )
    assert [p[0] for p in problems] == [("notebook_name",), ("param_file_name",)]


def test_missing_model_names_are_pipeline_level(project: FixtureProject) -> None:
    problems = problems_of(
        project, {"name": "write_to_snowflake", "model_type": "glue", "sql_file_names": ["x.sql"]}, glue_model_name=None
    )
    assert problems == [
        (
            ("glue_model_name",),
            "glue_model_name is blank, but step 'write_to_snowflake' (SQL, model_type glue) needs a folder under Glue_Models/",
            True,
        )
    ]


def test_external_wait_has_no_files(project: FixtureProject) -> None:
    files = files_of(
        project, {"name": "w", "type": "ExternalTaskSensor", "external_dag_details": {"external_dag_id": "x"}}
    )
    assert files == StepFiles()
