"""Waits on DAGs of an Airflow that still runs the old framework, through its REST API with
dagster-airlift's `AirflowInstance`.

Airflow 2 serves `/api/v1` with basic auth (airlift's own `AirflowBasicAuthBackend`);
Airflow 3 removed v1 and serves `/api/v2` behind a JWT from `POST /auth/token`
(`AirflowTokenAuthBackend` below, and `WaitsAirflowInstance.get_api_url`). Which one: the
setting ML_PIPELINES_AIRFLOW_API (`v1`, `v2`), else asked once: `/api/v2/version` answers
anything but 404 only on Airflow 3.

One pass of the waits sensor asks, per distinct logical date, for the DAG runs of every
awaited DAG at once (`POST .../dags/~/dagRuns/list`), then for the awaited task instances
of the runs found (`POST .../dags/~/dagRuns/~/taskInstances/list`): a few requests however
many waits are open. The request bodies differ by version only in the date field
(`execution_date_*` in v1, `logical_date_*` in v2).

Settings: ML_PIPELINES_AIRFLOW_URL (the webserver / api-server base URL),
ML_PIPELINES_AIRFLOW_USER, ML_PIPELINES_AIRFLOW_PASSWORD, optionally ML_PIPELINES_AIRFLOW_API.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests

from ml_pipelines.waits.states import FAILED, RUNNING, SUCCESS

TIMEOUT_SECONDS = 10  # per request: a dead Airflow must not stall the sensor's tick
PAGE_LIMIT = 100  # Airflow's default and usual maximum page size
RUN_IDS_PER_REQUEST = 100
API_VERSIONS = ("v1", "v2")


class AirflowError(Exception):
    """Airflow could not be asked (connection, authentication, an unexpected answer)."""


@dataclass(frozen=True)
class AirflowSettings:
    url: str  # base URL, no trailing slash
    user: str = ""
    password: str = field(default="", repr=False)
    api: str | None = None  # v1, v2, or None: ask the server


def airflow_settings_from_env(environ: Mapping[str, str] | None = None) -> AirflowSettings | None:
    """None when ML_PIPELINES_AIRFLOW_URL is not set; ValueError naming a malformed variable."""
    environ = os.environ if environ is None else environ
    url = environ.get("ML_PIPELINES_AIRFLOW_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"ML_PIPELINES_AIRFLOW_URL={url!r} must be an http(s) URL")
    api = environ.get("ML_PIPELINES_AIRFLOW_API", "").strip().lower() or None
    if api is not None and api not in API_VERSIONS:
        raise ValueError(f"ML_PIPELINES_AIRFLOW_API={api!r} must be v1 (Airflow 2) or v2 (Airflow 3)")
    return AirflowSettings(
        url=url.rstrip("/"),
        user=environ.get("ML_PIPELINES_AIRFLOW_USER", "").strip(),
        password=environ.get("ML_PIPELINES_AIRFLOW_PASSWORD", ""),
        api=api,
    )


class _TimeoutSession(requests.Session):
    """Every request with a timeout (requests has no default)."""

    def request(self, method, url, **kwargs):  # noqa: D401 - requests' signature
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        return super().request(method, url, **kwargs)


def _airlift():
    # imported on first use: dagster_airlift costs every code-location load otherwise
    from dagster_airlift.core import AirflowBasicAuthBackend, AirflowInstance
    from dagster_airlift.core.airflow_instance import AirflowAuthBackend

    return AirflowInstance, AirflowAuthBackend, AirflowBasicAuthBackend


class _TokenSession(_TimeoutSession):
    """A session that sends `Authorization: Bearer <token>` and, on a 401, gets a new token
    once and sends the request again (tokens expire; Airflow 3's default is 24 h)."""

    def __init__(self, backend: Any):
        super().__init__()
        self.backend = backend

    def request(self, method, url, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.backend.token()}"
        response = super().request(method, url, headers=headers, **kwargs)
        if response.status_code == 401:
            headers["Authorization"] = f"Bearer {self.backend.token(refresh=True)}"
            response = super().request(method, url, headers=headers, **kwargs)
        return response


def token_auth_backend(webserver_url: str, username: str, password: str):
    """Airflow 3's auth: `POST /auth/token {"username", "password"}` -> `{"access_token": ...}`."""
    _, AirflowAuthBackend, _ = _airlift()  # noqa: N806 - a class

    class AirflowTokenAuthBackend(AirflowAuthBackend):
        def __init__(self):
            self._url, self._username, self._password = webserver_url, username, password
            self._token: str | None = None
            self._session: requests.Session | None = None

        def token(self, refresh: bool = False) -> str:
            if self._token is None or refresh:
                try:
                    response = _TimeoutSession().post(
                        f"{self._url}/auth/token", json={"username": self._username, "password": self._password}
                    )
                except requests.RequestException as exc:
                    raise AirflowError(f"POST {self._url}/auth/token: {type(exc).__name__}: {exc}") from None
                if response.status_code not in (200, 201):
                    raise AirflowError(
                        f"POST {self._url}/auth/token: HTTP {response.status_code}: {_snippet(response)}"
                    )
                token = _json(response, "POST /auth/token").get("access_token")
                if not token:
                    raise AirflowError(f"POST {self._url}/auth/token: no access_token in the answer")
                self._token = token
            return self._token

        def get_session(self) -> requests.Session:
            if self._session is None:
                self._session = _TokenSession(self)
            return self._session

        def get_webserver_url(self) -> str:
            return self._url

    return AirflowTokenAuthBackend()


def basic_auth_backend(webserver_url: str, username: str, password: str):
    """Airflow 2: airlift's basic auth, with a timeout on every request."""
    _, _, AirflowBasicAuthBackend = _airlift()  # noqa: N806 - a class

    class TimeoutBasicAuthBackend(AirflowBasicAuthBackend):
        def get_session(self) -> requests.Session:
            session = _TimeoutSession()
            session.auth = (self.username, self.password)
            return session

    return TimeoutBasicAuthBackend(webserver_url, username, password)


def detect_api_version(url: str) -> str:
    """v2 when the server has `/api/v2` (Airflow 3: 200, or 401/403 without a token), else v1."""
    try:
        response = _TimeoutSession().get(f"{url}/api/v2/version")
    except requests.RequestException as exc:
        raise AirflowError(f"GET {url}/api/v2/version: {type(exc).__name__}: {exc}") from None
    return "v1" if response.status_code == 404 else "v2"


def airflow_instance(settings: AirflowSettings):
    """dagster-airlift's `AirflowInstance` for the configured Airflow, speaking its API version."""
    AirflowInstance, _, _ = _airlift()  # noqa: N806 - a class
    version = settings.api or detect_api_version(settings.url)
    if version == "v2":
        backend = token_auth_backend(settings.url, settings.user, settings.password)
    else:
        backend = basic_auth_backend(settings.url, settings.user, settings.password)

    class WaitsAirflowInstance(AirflowInstance):
        """airlift's instance on `/api/<version>`, plus the two batch reads the waits need."""

        api_version = version

        def get_api_url(self) -> str:
            return f"{self.auth_backend.get_webserver_url()}/api/{self.api_version}"

        def _post_pages(self, path: str, body: dict[str, Any], items: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            while True:
                page = {**body, "page_offset": len(found), "page_limit": PAGE_LIMIT}
                try:
                    response = self.auth_backend.get_session().post(f"{self.get_api_url()}/{path}", json=page)
                except requests.RequestException as exc:
                    raise AirflowError(f"POST /api/{self.api_version}/{path}: {type(exc).__name__}: {exc}") from None
                if response.status_code != 200:
                    raise AirflowError(
                        f"POST /api/{self.api_version}/{path}: HTTP {response.status_code}: {_snippet(response)}"
                    )
                data = _json(response, path)
                batch = data.get(items) or []
                found += batch
                if not batch or len(batch) < PAGE_LIMIT or len(found) >= int(data.get("total_entries") or 0):
                    return found

        def dag_runs_at(self, dag_ids: list[str], logical_date: datetime) -> list[dict[str, Any]]:
            """The runs of `dag_ids` whose logical date is `logical_date`."""
            field_name = "execution_date" if self.api_version == "v1" else "logical_date"
            when = logical_date.astimezone(timezone.utc).isoformat()
            body = {"dag_ids": dag_ids, f"{field_name}_gte": when, f"{field_name}_lte": when}
            return self._post_pages("dags/~/dagRuns/list", body, "dag_runs")

        def task_instances_of(self, dag_ids: list[str], run_ids: list[str], task_ids: list[str]) -> list[dict]:
            body = {"dag_ids": dag_ids, "dag_run_ids": run_ids, "task_ids": task_ids}
            return self._post_pages("dags/~/dagRuns/~/taskInstances/list", body, "task_instances")

    return WaitsAirflowInstance(auth_backend=backend, name="ml_pipelines_waits")


def _snippet(response: requests.Response) -> str:
    return " ".join(response.text.split())[:200]


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise AirflowError(f"{what}: the answer is not JSON: {_snippet(response)}") from None
    if not isinstance(data, dict):
        raise AirflowError(f"{what}: unexpected answer: {_snippet(response)}")
    return data


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class AirflowQuery:
    """What one wait asks: the state of `dag_id` (or its task `task_id`) in its run at `logical_date`."""

    dag_id: str
    task_id: str | None
    logical_date: datetime


def task_state(instances: list[dict[str, Any]]) -> str | None:
    """One task's state from its instances (several for a mapped task), as Airflow combines them."""
    states = [ti.get("state") for ti in instances]
    if not states:
        return None
    if len(states) == 1:
        return states[0]
    if any(s in (FAILED, "upstream_failed") for s in states):
        return FAILED
    if all(s == SUCCESS for s in states):
        return SUCCESS
    return RUNNING


class AirflowWaits:
    """Reads the awaited states from one Airflow, a few requests per pass (see the module doc)."""

    def __init__(self, settings: AirflowSettings, instance: Any = None):
        self.settings = settings
        self._instance = instance

    @property
    def instance(self):
        if self._instance is None:
            self._instance = airflow_instance(self.settings)
        return self._instance

    def states(self, queries: Iterable[AirflowQuery]) -> dict[AirflowQuery, str | None]:
        """Each query's Airflow state (None: no such run or task instance). AirflowError when
        Airflow cannot be asked."""
        queries = list(dict.fromkeys(queries))
        instance = self.instance
        runs: dict[tuple[str, datetime], dict[str, Any]] = {}
        for when in sorted({q.logical_date for q in queries}):
            dag_ids = sorted({q.dag_id for q in queries if q.logical_date == when})
            for run in instance.dag_runs_at(dag_ids, when):
                logical = _parse_time(run.get("logical_date") or run.get("execution_date"))
                if logical is not None and logical == when and run.get("dag_id") in dag_ids:
                    runs[(run["dag_id"], when)] = run
        wanted = [q for q in queries if q.task_id and (q.dag_id, q.logical_date) in runs]
        instances: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        run_ids = sorted({runs[(q.dag_id, q.logical_date)]["dag_run_id"] for q in wanted})
        for start in range(0, len(run_ids), RUN_IDS_PER_REQUEST):
            chunk = run_ids[start : start + RUN_IDS_PER_REQUEST]
            chunk_queries = [q for q in wanted if runs[(q.dag_id, q.logical_date)]["dag_run_id"] in chunk]
            for ti in instance.task_instances_of(
                sorted({q.dag_id for q in chunk_queries}), chunk, sorted({q.task_id for q in chunk_queries})
            ):
                instances.setdefault((ti.get("dag_id"), ti.get("dag_run_id"), ti.get("task_id")), []).append(ti)
        answer: dict[AirflowQuery, str | None] = {}
        for q in queries:
            run = runs.get((q.dag_id, q.logical_date))
            if run is None:
                answer[q] = None
            elif q.task_id is None:
                answer[q] = run.get("state")
            else:
                answer[q] = task_state(instances.get((q.dag_id, run["dag_run_id"], q.task_id), []))
        return answer
