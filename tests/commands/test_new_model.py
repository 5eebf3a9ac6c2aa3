"""`ml-pipelines new-model NAME --kind ...` in an empty project: the scaffold validates in every
environment and runs in LOCAL as written (`ml-pipelines run`, the project's instance)."""

from __future__ import annotations

import pytest

from tests.commands.conftest import command_env, ml_pipelines

KINDS = {"python": "Check_Counts", "notebook": "Churn_Model", "glue": "Daily_Sums"}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("new-model")
    project = root / "project"
    project.mkdir()
    env = command_env(project, root)
    outputs = {}
    for kind, name in KINDS.items():
        done = ml_pipelines(["new-model", name, "--kind", kind], env, project, timeout=60)
        assert done.returncode == 0, done.stderr
        outputs[kind] = done.stdout
    return root, project, env, outputs


def test_the_scaffolds_validate_in_every_environment(scaffolded):
    _, project, env, outputs = scaffolded
    assert "created model_configs/churn_model.yml" in outputs["notebook"]
    assert (project / "Sagemaker_Models" / "Churn_Model" / "Churn_Model.ipynb").is_file()
    assert (project / "Glue_Models" / "Daily_Sums" / "daily_sums_job.py").is_file()
    assert (project / "Sagemaker_Models" / "Check_Counts" / "python_scripts" / "check_counts.py").is_file()
    done = ml_pipelines(["validate"], env, project, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 pipelines valid in every environment" in done.stderr


def test_a_second_scaffold_of_the_same_name_writes_nothing(scaffolded):
    _, project, env, _ = scaffolded
    before = (project / "model_configs" / "churn_model.yml").read_text()
    done = ml_pipelines(["new-model", "Churn_Model", "--kind", "python"], env, project, timeout=60)
    assert done.returncode == 1 and "already exists" in done.stderr
    assert (project / "model_configs" / "churn_model.yml").read_text() == before
    assert not (project / "Sagemaker_Models" / "Churn_Model" / "python_scripts").exists()
    bad = ml_pipelines(["new-model", "churn-model", "--kind", "python"], env, project, timeout=60)
    assert bad.returncode == 1 and "letters, digits and _" in bad.stderr


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_scaffold_runs_in_local_as_written(scaffolded, kind):
    root, project, env, outputs = scaffolded
    # the command it printed: ml-pipelines run <pipeline id> --date <a week ago>
    command = outputs[kind].split("run it with `ml-pipelines ")[1].split("`")[0].split()
    done = ml_pipelines(command, env, project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("run succeeded")
    if kind == "notebook":
        assert "sagemaker_notebook_job_processing_script: notebook http://127.0.0.1:3000/notebook?path=" in done.stdout
        (csv,) = (root / "home" / "storage").rglob("result_*.csv")
        assert csv.read_text().splitlines()[0] == "dt,value"
    if kind == "glue":
        assert list((root / "home" / "storage").rglob("daily_sums/daily/dt=*/*.parquet"))
