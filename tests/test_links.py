"""Links from a step's materialization to what it produced (steps/links.py)."""

from __future__ import annotations

from types import SimpleNamespace

from ml_pipelines.steps.links import location_name, notebook_view_url, s3_object_url


def test_a_local_notebook_opens_in_the_webservers_notebook_view():
    path = "/p/.ml_pipelines/storage/b/out/runs/r 1/Forecast.ipynb"
    assert notebook_view_url(path, "ml_pipelines", environ={}) == (
        "/notebook?path=/p/.ml_pipelines/storage/b/out/runs/r%201/Forecast.ipynb&repoLocName=ml_pipelines"
    )
    absolute = notebook_view_url(path, "loc", environ={"ML_PIPELINES_UI_URL": "http://ui.example.test:3000/"})
    assert absolute.startswith("http://ui.example.test:3000/notebook?path=/p/")


def test_the_location_is_the_runs_own_else_the_projects_usual_name(monkeypatch):
    monkeypatch.delenv("ML_PIPELINES_LOCATION_NAME", raising=False)
    origin = SimpleNamespace(location_name="from_the_run")
    assert location_name(SimpleNamespace(run=SimpleNamespace(remote_job_origin=origin))) == "from_the_run"
    assert location_name(SimpleNamespace(run=SimpleNamespace(remote_job_origin=None))) == "ml_pipelines"


def test_an_s3_notebook_opens_in_the_console_or_at_the_endpoint():
    uri = "s3://bucket-dev/models/x/output/runs/abc/Forecast.ipynb"
    assert s3_object_url(uri, "eu-west-1", environ={}) == (
        "https://eu-west-1.console.aws.amazon.com/s3/object/bucket-dev?region=eu-west-1"
        "&prefix=models/x/output/runs/abc/Forecast.ipynb"
    )
    assert s3_object_url(uri, "eu-west-1", environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}) == (
        "http://127.0.0.1:5000/bucket-dev/models/x/output/runs/abc/Forecast.ipynb"
    )
