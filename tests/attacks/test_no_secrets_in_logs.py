"""Issue 10, item 4: a token from `ML_PIPELINES_VAR_API_TOKEN`, a `db_password` parameter and a
secret-named variable of variables.yml must not reach the run's event log in clear: not in the
"Running ..." command line, the script's output, the Glue step's `arguments` metadata, the
SQL step's `statements` metadata, nor a failure's message, causes or Pipes error events.

Each test runs real steps of a tiny project against an on-disk instance, then reads the
run's whole event log (every entry serialized: message, user_message, the Dagster event with
its metadata and errors).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test, materialize, serialize_value

from ml_pipelines.steps.redact import MASK, Redactor, is_secret_name
from tests.factory.conftest import build_defs

API_TOKEN = "s3cr3t-t0ken-value"
DB_PASSWORD = "hunter2-db-pass"
SERVICE_PASSWORD = "file-service-pw"
SECRETS = (API_TOKEN, DB_PASSWORD, SERVICE_PASSWORD)
KEY_COLUMNS = "visible_key_column"  # under a name that only looks like a key: not masked
PARTITION = "2024-01-03"
PIPELINE_ID = "t_secrets_Daily"

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: secrets
    action: Daily
    glue_model_name: tokens
    default_args:
      owner: "Tiny Team"
      start_date: "2024-1-1"
      retries: 0
    schedule_interval: "0 6 * * *"
    catchup: false
    tasks:
      - name: python_script_call_api
        type: BashOperator
        script_loc: common
        script_name: call_api
        templates_dict:
          api_token: "{{ var.value.API_TOKEN }}"
          out: "{out}"
      - name: glue_job_processing_script_fetch
        type: BashOperator
        Details:
          script_name: fetch
          script_loc: common
        BucketIOConfig:
          DEV: {model_bucket: tokens-dev}
          BETA: {model_bucket: tokens-beta}
          PROD: {model_bucket: tokens-prod}
        templates_dict:
          api_token: "{{ var.value.API_TOKEN }}"
      - name: write_to_snowflake_calls
        model_type: glue
        sql_file_names: [store_calls.sql]
      - name: python_script_fail
        type: BashOperator
        script_loc: common
        script_name: fail_with_token
        templates_dict:
          header: "Bearer {{ var.value.API_TOKEN }}"
"""

CALL_API = """\
import hashlib, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
with open(args["--out"], "w") as f:
    for name in ("--api_token", "--db_password"):
        f.write(hashlib.sha256(args[name].encode()).hexdigest() + "\\n")
print("calling the API with", args["--api_token"], "and", args["--db_password"])
"""

FETCH = """\
import sys
print("fetch", sys.argv[1:])
"""

FAIL = """\
import sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
raise ValueError("the API refused header " + args["--header"])
"""

SQL = """\
CREATE OR REPLACE TABLE api_calls AS
SELECT '{{ ds }}' AS ds, '{{ var.value.API_TOKEN }}' AS token_used, '{{ var.value.SERVICE_PASSWORD }}' AS pw;
"""


def _write_project(root: Path, out: Path) -> Path:
    configs = root / "model_configs"
    configs.mkdir(parents=True)
    (configs / "secrets.yml").write_text(CONFIG.replace("{out}", str(out)))
    (configs / "variables.yml").write_text(f"LOCAL:\n  SERVICE_PASSWORD: {SERVICE_PASSWORD}\n")
    py_models = root / "Py_Models"
    (py_models / "call_api").mkdir(parents=True)
    (py_models / "call_api.py").write_text(CALL_API)
    parameters = {"COMMON": {"db_password": DB_PASSWORD, "key_columns": KEY_COLUMNS}}
    (py_models / "call_api" / "parameters.json").write_text(json.dumps(parameters))
    (py_models / "fail_with_token.py").write_text(FAIL)
    glue = root / "Glue_Models"
    (glue / "common").mkdir(parents=True)
    (glue / "common" / "fetch.py").write_text(FETCH)
    (glue / "tokens" / "pipeline").mkdir(parents=True)
    (glue / "tokens" / "pipeline" / "store_calls.sql").write_text(SQL)
    return root


def _everything_recorded(instance, run_id: str) -> str:
    """The run's whole event log as text: each entry serialized, and printed as Dagster shows it."""
    entries = instance.all_logs(run_id)
    assert entries
    return "\n".join(serialize_value(e) + "\n" + str(e) for e in entries)


def _run(defs, instance, steps: list[str]):
    assets = [defs.get_assets_def(AssetKey([PIPELINE_ID, s])) for s in steps]
    return materialize(
        assets, partition_key=PARTITION, instance=instance, resources=defs.resources, raise_on_error=False
    )


@pytest.fixture
def instance():
    """A real on-disk instance: the event log read back is the stored one."""
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_PIPELINES_VAR_API_TOKEN", API_TOKEN)
    out = tmp_path / "hashes.txt"
    root = _write_project(tmp_path / "project", out)
    return build_defs(root, tmp_path / "home", strict=True), out


def test_script_glue_and_sql_steps_record_no_secret(project, instance):
    defs, out = project
    result = _run(
        defs, instance, ["python_script_call_api", "glue_job_processing_script_fetch", "write_to_snowflake_calls"]
    )
    assert result.success
    recorded = _everything_recorded(instance, result.run_id)
    for secret in SECRETS:
        assert secret not in recorded
    # the steps still ran with the real values ...
    digests = out.read_text().split()
    assert digests == [hashlib.sha256(s.encode()).hexdigest() for s in (API_TOKEN, DB_PASSWORD)]
    warehouse = defs.resources["warehouse"]
    with warehouse.snowflake_resource() as resource, resource.get_connection() as conn:
        row = conn.cursor().execute(f"SELECT token_used, pw FROM {warehouse.database}.PUBLIC.API_CALLS").fetchone()
    assert tuple(row) == (API_TOKEN, SERVICE_PASSWORD)
    # ... and what they logged and reported is there, masked where it held a secret
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("Running" in m and f"--api_token {MASK}" in m and f"--db_password {MASK}" in m for m in messages)
    assert any(f"calling the API with {MASK} and {MASK}" in m for m in messages)
    assert KEY_COLUMNS in recorded and PARTITION in recorded
    glue = result.asset_materializations_for_node(
        AssetKey([PIPELINE_ID, "glue_job_processing_script_fetch"]).to_python_identifier()
    )
    assert glue[0].metadata["arguments"].value["api_token"] == MASK
    sql = result.asset_materializations_for_node(
        AssetKey([PIPELINE_ID, "write_to_snowflake_calls"]).to_python_identifier()
    )
    (statement,) = sql[0].metadata["statements"].value
    assert f"'{MASK}' AS token_used, '{MASK}' AS pw" in statement["statement"]


def test_a_failing_step_whose_error_holds_the_secret_records_it_masked(project, instance):
    defs, _ = project
    result = _run(defs, instance, ["python_script_fail"])
    assert not result.success
    recorded = _everything_recorded(instance, result.run_id)
    assert API_TOKEN not in recorded
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error.to_string()
    assert f"the API refused header Bearer {MASK}" in error
    # the Pipes session's error event from the script, masked too
    engine_errors = [
        e.dagster_event.engine_event_data.error.to_string()
        for e in instance.all_logs(result.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        if e.dagster_event.engine_event_data.error is not None
    ]
    assert any(f"Bearer {MASK}" in text for text in engine_errors)


def test_secret_looking_names_are_whole_words():
    secret = ["db_password", "DB_PASSWD", "apiKey", "api_key", "API_TOKEN", "client_secret", "privateKey", "auth"]
    not_secret = ["key_columns", "partition_key", "author", "primary_key", "tokenizer", "passage", "monkey"]
    assert [n for n in secret if not is_secret_name(n)] == []
    assert [n for n in not_secret if is_secret_name(n)] == []


def test_short_values_are_left_alone_and_a_cut_secret_is_masked():
    redactor = Redactor.for_step({"db_password": "abc", "api_token": API_TOKEN}, environ={})
    assert redactor.mask("abc is short") == "abc is short"
    # the SQL step shortens long statements with "...": the start of a secret is masked too
    assert redactor.mask(f"SELECT '{API_TOKEN[:9]}...") == f"SELECT '{MASK}..."
    assert redactor.mask(f'{{"token": {json.dumps(API_TOKEN)}}}') == f'{{"token": "{MASK}"}}'


class _OpaqueError(Exception):
    """An exception whose text is computed from something that is not a text attribute."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw

    def __str__(self) -> str:
        return self.raw.decode()


def test_exceptions_are_masked_in_place_along_their_chain_or_reported_unmaskable():
    redactor = Redactor.for_step({}, {"api_token": API_TOKEN}, environ={})
    try:
        try:
            raise KeyError(API_TOKEN)
        except KeyError as inner:
            raise RuntimeError(f"lookup of {API_TOKEN} failed") from inner
    except RuntimeError as exc:
        outer = exc
    assert redactor.mask_exception(outer)
    assert str(outer) == f"lookup of {MASK} failed" and str(outer.__cause__) == repr(MASK)
    assert not redactor.mask_exception(_OpaqueError(f"token {API_TOKEN}".encode()))
