"""Where a step's files live in object storage, per environment (LOCAL mirrors it locally).

- notebooks: `s3://<bucket>/sagemaker-models-<env>/<model_name>/<notebook stem>/input/`
  and `.../output/`;
- Glue: `s3://<bucket>/glue-models-<env>/<glue_model_name or 'common'>/<script_name>/` with
  `input/`, `lib/`, `jar/`, `temp/`; a `script_loc: common` script also has
  `input/common_lib/`, `input/common_jars/`, `input/pub_dependencies/`,
  `input/common_py_files/`.

Each run keeps its own files below a step's prefixes, in `runs/<run key>/` (`run_uri`): the
run key is Dagster's run id, with `-retry<N>` for a step's retry N. A notebook run writes its
executed notebook to `output/runs/<run key>/<notebook stem>.ipynb`; a successful run then
publishes the notebook and the files it wrote to `output/` (each replaced atomically), a
failed one leaves them in its run folder. Inputs (notebook, parameter file, `lib/`): on S3 they
are staged at `input/` itself (an object write is atomic and an unchanged file is skipped), the
run's resolved parameters at `parameters/<sha256>.json` beside it; LOCAL copies them into
`input/runs/<run key>/`, as a local folder can be read half-copied. `ml-pipelines plan` shows
the step's prefixes.

`<env>` is the lower-case environment name. The bucket is the step's
`BucketIOConfig.<ENV>.model_bucket`; LOCAL uses its LOCAL entry, else the DEV entry, else
`ml-pipelines-local` (LOCAL never touches a real bucket: URIs map under the storage root).
A blank bucket in DEV, BETA or PROD is a PlanError.
"""

from __future__ import annotations

from typing import Any, Mapping

LOCAL_DEFAULT_BUCKET = "ml-pipelines-local"
RUNS_FOLDER = "runs"
GLUE_COMMON_INPUTS = ("common_lib", "common_jars", "pub_dependencies", "common_py_files")


class PlanError(ValueError):
    """A step cannot be planned for the environment; the message says which and why."""


def model_bucket(bucket_config: Mapping[str, Any], env: str, *, where: str) -> str:
    """The step's bucket for `env` (see the module doc); `where` names the step in errors."""
    env = env.upper()

    def entry(name: str) -> str | None:
        cfg = bucket_config.get(name)
        value = cfg.get("model_bucket") if isinstance(cfg, dict) else getattr(cfg, "model_bucket", None)
        return (value or "").strip() or None

    if env == "LOCAL":
        return entry("LOCAL") or entry("DEV") or LOCAL_DEFAULT_BUCKET
    bucket = entry(env)
    if bucket is None:
        raise PlanError(f"{where}: BucketIOConfig.{env}.model_bucket is blank; set the S3 bucket for {env}")
    return bucket


def _prefix(bucket: str, area: str, env: str, *parts: str) -> str:
    return "s3://" + "/".join([bucket, f"{area}-{env.lower()}", *parts]) + "/"


def notebook_uris(bucket: str, env: str, model_name: str, notebook_stem: str) -> dict[str, str]:
    base = _prefix(bucket, "sagemaker-models", env, model_name, notebook_stem)
    return {"base": base, "input": base + "input/", "output": base + "output/"}


def glue_uris(bucket: str, env: str, glue_model_name: str | None, script_name: str, *, common: bool) -> dict[str, str]:
    base = _prefix(bucket, "glue-models", env, glue_model_name or "common", script_name)
    uris = {
        "base": base,
        "input": base + "input/",
        "lib": base + "lib/",
        "jar": base + "jar/",
        "temp": base + "temp/",
    }
    if common:
        uris.update({name: f"{base}input/{name}/" for name in GLUE_COMMON_INPUTS})
    return uris


def run_key(run_id: str, retry_number: int = 0) -> str:
    """The name of a run's own folder: the run id, `-retry<N>` for the step's retry N."""
    return run_id if not retry_number else f"{run_id}-retry{retry_number}"


def run_uri(prefix_uri: str, key: str) -> str:
    """A run's own folder below an input or output prefix: `<prefix>runs/<key>/`."""
    return f"{prefix_uri.rstrip('/')}/{RUNS_FOLDER}/{key}/"
