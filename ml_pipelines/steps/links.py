"""Links a step's materialization carries to what it produced, one click from the asset page.

- A notebook executed on this machine (LOCAL): the Dagster webserver's own notebook view,
  `/notebook?path=<the run's copy>&repoLocName=<code location>`, rendered to HTML by
  dagster-webserver[notebook]. The webserver asks the code location's server for the file,
  which serves only files under its working folder (where `make dev` runs: the project's
  `.ml_pipelines/` is under it). The link is relative to the UI (it works on whatever host
  and port the UI is opened), or absolute under `$ML_PIPELINES_UI_URL` when that is set.
- A notebook on S3 (DEV, BETA, PROD): the webserver cannot read it; the link opens the
  object in the S3 console, or, with `AWS_ENDPOINT_URL` (moto, the sandbox), the object at
  that endpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_LOCATION_NAME = "ml_pipelines"  # workspace.yaml's, pyproject's [tool.dg.project]


def location_name(context: Any) -> str:
    """The code location the step's run was launched from; the project's usual name for a run
    executed in its own process (`dagster asset materialize`), which has no origin."""
    run = getattr(context, "run", None)
    origin = getattr(run, "remote_job_origin", None) if run is not None else None
    if origin is not None:
        return origin.location_name
    return os.environ.get("ML_PIPELINES_LOCATION_NAME", "").strip() or DEFAULT_LOCATION_NAME


def notebook_view_url(path: str | Path, location: str, environ: Any = None) -> str:
    """The webserver's HTML view of a local .ipynb."""
    environ = os.environ if environ is None else environ
    base = (environ.get("ML_PIPELINES_UI_URL") or "").strip().rstrip("/")
    query = urlencode({"path": str(path), "repoLocName": location}, quote_via=quote, safe="/")
    return f"{base}/notebook?{query}"


def s3_object_url(uri: str, region: str | None, environ: Any = None) -> str:
    """`s3://bucket/key` as a link a browser opens: the S3 console's page of the object, or
    the object itself at $AWS_ENDPOINT_URL."""
    environ = os.environ if environ is None else environ
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    endpoint = (environ.get("AWS_ENDPOINT_URL") or "").strip().rstrip("/")
    if endpoint:
        return f"{endpoint}/{quote(bucket)}/{quote(key)}"
    region = region or "us-east-1"
    return f"https://{region}.console.aws.amazon.com/s3/object/{quote(bucket)}?" + urlencode(
        {"region": region, "prefix": key}, quote_via=quote, safe="/"
    )
