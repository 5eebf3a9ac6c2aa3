import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from ml_pipelines.config.session import LoadSession
from ml_pipelines.plan.versions import file_digest, image_version, step_code_version

from .conftest import CONFIG, PIPELINE_ID, notebook

NOTEBOOK = "sagemaker_notebook_job_processing_script"
ALL = [
    "ecr_container_creation",
    NOTEBOOK,
    "glue_job_processing_script",
    "glue_job_processing_script_common",
    "python_script_check",
    "python_script_model",
    "write_to_snowflake",
    "external_task_dag_status",
]


def versions(project, session=None):
    pipeline = project.pipeline(PIPELINE_ID)
    return {name: step_code_version(pipeline, name, project.paths, session) for name in ALL}


def rewrite(path: Path, text: str) -> None:
    """Write and move mtime forward, as an edit made a while later would."""
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def changed(before, after):
    return {k for k in before if before[k] != after[k]}


@pytest.fixture
def project(project_root, load):
    return load(project_root, "DEV")


def test_versions_are_short_stable_and_distinct(project):
    v1 = versions(project)
    assert versions(project) == v1 == versions(project, LoadSession())
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in v1.values())
    assert len(set(v1.values())) == len(v1)


def test_notebook_source_change(project, project_root):
    before = versions(project)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "Forecast.ipynb", notebook("print('changed')"))
    assert changed(before, versions(project)) == {NOTEBOOK}


def test_notebook_outputs_only_change_nothing(project, project_root):
    before = versions(project)
    path = project_root / "Sagemaker_Models" / "demo" / "Forecast.ipynb"
    nb = nbformat.reads(path.read_text(), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells[1].execution_count = 7
    rewrite(path, nbformat.writes(nb))
    assert changed(before, versions(project)) == set()


def test_lib_change_and_new_lib_file(project, project_root):
    before = versions(project)
    lib = project_root / "Sagemaker_Models" / "demo" / "lib"
    rewrite(lib / "util.py", "X = 2\n")
    after = versions(project)
    # the notebook and the model's Python script use the model's lib/
    assert changed(before, after) == {NOTEBOOK, "python_script_model"}
    rewrite(lib / "sub" / "new.py", "Z = 1\n")
    assert changed(after, versions(project)) == {NOTEBOOK, "python_script_model"}
    # caches and bytecode do not count
    after = versions(project)
    rewrite(lib / "__pycache__" / "util.cpython-311.pyc", "bytes")
    rewrite(lib / ".ipynb_checkpoints" / "x.py", "junk")
    assert changed(after, versions(project)) == set()


def test_glue_lib_and_jar_change(project, project_root):
    before = versions(project)
    rewrite(project_root / "Glue_Models" / "gmodel" / "lib" / "helpers.py", "Y = 3\n")
    after = versions(project)
    assert changed(before, after) == {"glue_job_processing_script"}
    rewrite(project_root / "Glue_Models" / "gmodel" / "jars" / "dep.jar", "other-bytes")
    assert changed(after, versions(project)) == {"glue_job_processing_script"}


def test_sql_change(project, project_root):
    before = versions(project)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "pipeline" / "merge.sql", "select 2;\n")
    assert changed(before, versions(project)) == {"write_to_snowflake"}


def test_requirements_change(project, project_root):
    before = versions(project)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "requirements.txt", "pandas==2.2\n")
    # the image, the notebook that runs in it, and the model script that installs it
    assert changed(before, versions(project)) == {"ecr_container_creation", NOTEBOOK, "python_script_model"}


def test_dockerfile_change(project, project_root):
    before = versions(project)
    rewrite(project_root / "containers" / "python3" / "Dockerfile", "FROM python:3.12-slim\n")
    assert changed(before, versions(project)) == {"ecr_container_creation", NOTEBOOK}


def test_parameter_file_and_script_changes(project, project_root):
    before = versions(project)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "parameters.json", json.dumps({"COMMON": {"top_n": 5}}))
    after = versions(project)
    assert changed(before, after) == {NOTEBOOK}
    rewrite(project_root / "Py_Models" / "check.py", "print('v2')\n")
    assert changed(after, versions(project)) == {"python_script_check"}
    after = versions(project)
    rewrite(project_root / "Glue_Models" / "common" / "shared" / "extra.py", "Z = 4\n")
    assert changed(after, versions(project)) == {"glue_job_processing_script_common"}


def test_unrelated_files_change_nothing(project, project_root):
    before = versions(project)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "notes.md", "hello")
    rewrite(project_root / "Sagemaker_Models" / "other" / "x.py", "x")
    rewrite(project_root / "README.md", "readme")
    assert changed(before, versions(project)) == set()


def test_config_changes(project_root, load):
    before = versions(load(project_root, "DEV"))
    config = project_root / "model_configs" / "demo.yml"
    text = CONFIG % {"prod_bucket": "prod-bucket"}
    # rewiring lineage alone changes no version
    rewrite(
        config,
        text.replace(
            "upstream_task_name: [glue_job_processing_script, glue_job_processing_script_common]",
            "upstream_task_name: [glue_job_processing_script]",
        ),
    )
    assert changed(before, versions(load(project_root, "DEV"))) == set()
    # a step's own settings do
    rewrite(config, text.replace('number_of_workers: "10"', 'number_of_workers: "12"'))
    assert changed(before, versions(load(project_root, "DEV"))) == {"glue_job_processing_script"}
    rewrite(config, text.replace("schema: ANALYTICS", "schema: STAGING"))
    assert changed(before, versions(load(project_root, "DEV"))) == {"write_to_snowflake"}


def test_moving_the_project_changes_nothing(project_root, load, tmp_path):
    before = versions(load(project_root, "DEV"))
    moved = tmp_path / "elsewhere"
    shutil.copytree(project_root, moved)
    assert versions(load(moved, "DEV")) == before


def test_file_digest_reads_a_shared_file_once_per_session(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_text("abc")
    reads = []
    original = Path.read_bytes

    def counting(self):
        reads.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    session = LoadSession()
    first = file_digest(path, session)
    for _ in range(50):
        assert file_digest(path, session) == first
    assert len(reads) == 1
    assert file_digest(path) == first and len(reads) == 2  # no session: read every time
    assert file_digest(tmp_path / "missing") == file_digest(tmp_path / "missing", session) == "missing"


def test_image_version_inputs(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("pandas\n")
    docker = tmp_path / "Dockerfile"
    docker.write_text("FROM x\n")
    base = image_version("python3", req, docker)
    assert image_version("python3", req, docker) == base
    assert image_version("pytorch_p36", req, docker) != base
    assert image_version("python3", None, docker) != base
    assert image_version("python3", req, None) != base


def test_a_session_stats_files_only_on_its_first_pass_and_gives_the_same_versions(project, project_root, monkeypatch):
    plain = versions(project)
    stats = []
    original = os.stat

    def counting(path, *a, **kw):
        stats.append(os.fspath(path))
        return original(path, *a, **kw)

    monkeypatch.setattr(os, "stat", counting)
    session = LoadSession()
    assert versions(project, session) == plain
    first_pass = len(stats)
    assert versions(project, session) == plain
    assert len(stats) == first_pass  # the second pass takes everything from the session
    # each file is stat'ed before and after it is digested (kept only if unchanged meanwhile)
    assert stats and max(Counter(stats).values()) <= 2
    # the next session sees changes
    monkeypatch.setattr(os, "stat", original)
    rewrite(project_root / "Sagemaker_Models" / "demo" / "pipeline" / "merge.sql", "select 3;\n")
    assert changed(plain, versions(project, LoadSession())) == {"write_to_snowflake"}


def test_the_image_tag_follows_the_files_the_dockerfile_copies(tmp_path):
    """containers/<kernel>/Dockerfile COPYs papermill_entrypoint.py from containers/: a changed
    entrypoint is a new image, not a reused one."""
    from ml_pipelines.plan.versions import image_version

    kernel_dir = tmp_path / "containers" / "python3"
    kernel_dir.mkdir(parents=True)
    dockerfile = kernel_dir / "Dockerfile"
    dockerfile.write_text("FROM python:3.11-slim\nCOPY requirements.txt /r.txt\nCOPY papermill_entrypoint.py /e.py\n")
    entrypoint = tmp_path / "containers" / "papermill_entrypoint.py"
    entrypoint.write_text("print(1)\n")
    before = image_version("python3", None, dockerfile)
    entrypoint.write_text("print(2)\n")
    assert image_version("python3", None, dockerfile) != before
