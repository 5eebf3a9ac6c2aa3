"""A local stand-in for an Airflow webserver's REST API (HTTP on 127.0.0.1, port 0, in a thread).

No real Airflow is available on these machines, so nothing here was recorded from one: the
responses are written after Airflow's documented API, field for field:

- Airflow 2, `/api/v1` (the stable REST API, basic auth): `POST /api/v1/dags/~/dagRuns/list`
  (body `ListDagRunsForm`: `dag_ids`, `execution_date_gte/lte`, `page_offset`, `page_limit`;
  answer `DAGRunCollection`: `dag_runs` of `DAGRun` with `dag_run_id`, `execution_date`,
  `logical_date`, `state`... and `total_entries`), `POST /api/v1/dags/~/dagRuns/~/taskInstances/list`
  (body `ListTaskInstanceForm`: `dag_ids`, `dag_run_ids`, `task_ids`, paging; answer
  `TaskInstanceCollection`), `GET /api/v1/dags/{dag}/dagRuns/{run}` and
  `.../taskInstances/{task}`; 401 in the problem-details shape without credentials; `/api/v2` is 404.
- Airflow 3, `/api/v2` (FastAPI, JWT): `POST /auth/token` with `{"username", "password"}` ->
  201 `{"access_token": ...}`; every `/api/v2` call wants `Authorization: Bearer <token>`
  (401 `{"detail": "Not authenticated"}` otherwise); the same list endpoints with
  `DAGRunsBatchBody` (`logical_date_gte/lte`) and `TaskInstancesBatchBody`, answers
  `DAGRunCollectionResponse` / `TaskInstanceCollectionResponse`; `/api/v1` is 404.

States are Airflow's (`success`, `failed`, `running`, `queued`, `upstream_failed`, `skipped`...).
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

USER, PASSWORD = "airflow-reader", "s3cret"


def _iso(when: datetime) -> str:
    return when.isoformat()


@dataclass
class FakeAirflow:
    version: str  # "v1" (Airflow 2) or "v2" (Airflow 3)
    url: str = ""
    runs: dict[tuple[str, datetime], dict] = field(default_factory=dict)  # (dag, logical date) -> run
    requests: list[dict] = field(default_factory=list)  # {"method", "path", "auth", "body"}
    tokens_issued: int = 0
    valid_tokens: set[str] = field(default_factory=set)

    def add_run(self, dag_id: str, logical_date: datetime, state: str, tasks: dict[str, str | list[str]]) -> str:
        """A DAG run and its task instances (a list of states: a mapped task)."""
        run_id = f"scheduled__{logical_date.isoformat()}"
        self.runs[(dag_id, logical_date)] = {"dag_id": dag_id, "run_id": run_id, "logical": logical_date,
                                            "state": state, "tasks": tasks}  # fmt: skip
        return run_id

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    @property
    def api_calls(self) -> list[dict]:
        """The calls to this version's API (not the version probe of the other one)."""
        return [r for r in self.requests if r["path"].startswith(f"/api/{self.version}/")]

    # --- the documented shapes -----------------------------------------------------------

    def dag_run(self, run: dict) -> dict:
        logical = run["logical"]
        base = {
            "dag_id": run["dag_id"],
            "dag_run_id": run["run_id"],
            "logical_date": _iso(logical),
            "start_date": _iso(logical + timedelta(days=1)),
            "end_date": _iso(logical + timedelta(days=1, minutes=5)) if run["state"] in ("success", "failed") else None,
            "data_interval_start": _iso(logical),
            "data_interval_end": _iso(logical + timedelta(days=1)),
            "last_scheduling_decision": _iso(logical + timedelta(days=1, minutes=5)),
            "run_type": "scheduled",
            "state": run["state"],
            "conf": {},
            "note": None,
        }
        if self.version == "v1":
            return {**base, "execution_date": _iso(logical), "external_trigger": False}
        return {
            **base,
            "queued_at": _iso(logical + timedelta(days=1)),
            "duration": 300.0 if base["end_date"] else None,
            "run_after": _iso(logical + timedelta(days=1)),
            "triggered_by": "timetable",
            "triggering_user_name": None,
            "dag_versions": [],
            "bundle_version": None,
            "dag_display_name": run["dag_id"],
        }

    def task_instances(self, run: dict, task_id: str) -> list[dict]:
        states = run["tasks"].get(task_id)
        if states is None:
            return []
        mapped = isinstance(states, list)
        out = []
        for index, state in enumerate(states if mapped else [states]):
            ti = {
                "task_id": task_id,
                "dag_id": run["dag_id"],
                "dag_run_id": run["run_id"],
                "map_index": index if mapped else -1,
                "start_date": _iso(run["logical"] + timedelta(days=1)),
                "end_date": None,
                "duration": None,
                "state": state,
                "try_number": 1,
                "max_tries": 1,
                "hostname": "worker-1",
                "unixname": "airflow",
                "pool": "default_pool",
                "pool_slots": 1,
                "queue": "default",
                "priority_weight": 1,
                "operator": "BashOperator",
                "queued_when": None,
                "pid": 4242,
                "executor_config": "{}",
                "note": None,
                "rendered_fields": {},
                "trigger": None,
                "triggerer_job": None,
            }
            if self.version == "v1":
                ti |= {"execution_date": _iso(run["logical"]), "sla_miss": None}
            else:
                ti |= {"id": f"0190-{index}", "logical_date": _iso(run["logical"]), "run_after": _iso(run["logical"]),
                       "task_display_name": task_id, "dag_display_name": run["dag_id"], "operator_name": "BashOperator",
                       "scheduled_when": None, "executor": None, "rendered_map_index": None, "dag_version": None}  # fmt: skip
            out.append(ti)
        return out


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _handler(fake: FakeAirflow):
    prefix = f"/api/{fake.version}/"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            """No request log on stderr."""

        def _send(self, status: int, body: dict | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def _authorized(self) -> bool:
            auth = self.headers.get("Authorization") or ""
            if fake.version == "v1":
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                return auth == expected
            return auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in fake.valid_tokens

        def _unauthorized(self) -> None:
            if fake.version == "v1":
                self._send(401, {"detail": None, "status": 401, "title": "Unauthorized",
                                 "type": "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html#section/Errors/Unauthenticated"})  # fmt: skip
            else:
                self._send(401, {"detail": "Not authenticated"})

        def _handle(self, method: str) -> None:
            path = urlparse(self.path).path
            body = self._body() if method == "POST" else {}
            fake.requests.append(
                {"method": method, "path": path, "auth": self.headers.get("Authorization"), "body": body}
            )
            if fake.version == "v2" and method == "POST" and path == "/auth/token":
                if body.get("username") == USER and body.get("password") == PASSWORD:
                    fake.tokens_issued += 1
                    token = f"jwt-{fake.tokens_issued}"
                    fake.valid_tokens.add(token)
                    return self._send(201, {"access_token": token})
                return self._send(401, {"detail": "Invalid credentials"})
            if not path.startswith(prefix):
                return self._send(404, {"detail": "Not Found"})
            if not self._authorized():
                return self._unauthorized()
            rest = [unquote(p) for p in path[len(prefix) :].split("/")]
            if method == "GET" and rest == ["version"]:
                return self._send(200, {"version": "3.1.0" if fake.version == "v2" else "2.10.5", "git_version": None})
            if method == "POST" and rest == ["dags", "~", "dagRuns", "list"]:
                return self._send(200, self._dag_runs(body))
            if method == "POST" and rest == ["dags", "~", "dagRuns", "~", "taskInstances", "list"]:
                return self._send(200, self._task_instances(body))
            if method == "GET" and len(rest) == 4 and rest[0] == "dags" and rest[2] == "dagRuns":
                run = next((r for r in fake.runs.values() if r["dag_id"] == rest[1] and r["run_id"] == rest[3]), None)
                return self._send(200, fake.dag_run(run)) if run else self._not_found("DAGRun")
            if method == "GET" and len(rest) == 6 and rest[2] == "dagRuns" and rest[4] == "taskInstances":
                run = next((r for r in fake.runs.values() if r["dag_id"] == rest[1] and r["run_id"] == rest[3]), None)
                tis = fake.task_instances(run, rest[5]) if run else []
                return self._send(200, tis[0]) if tis else self._not_found("Task instance")
            return self._send(404, {"detail": "Not Found"})

        def _not_found(self, what: str) -> None:
            if fake.version == "v1":
                self._send(404, {"detail": f"{what} not found", "status": 404, "title": f"{what} not found",
                                 "type": "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html#section/Errors/NotFound"})  # fmt: skip
            else:
                self._send(404, {"detail": f"The {what} was not found"})

        def _page(self, items: list[dict], body: dict, key: str) -> dict:
            offset, limit = int(body.get("page_offset") or 0), int(body.get("page_limit") or 100)
            return {key: items[offset : offset + limit], "total_entries": len(items)}

        def _dag_runs(self, body: dict) -> dict:
            field_name = "execution_date" if fake.version == "v1" else "logical_date"
            gte, lte = _parse(body.get(f"{field_name}_gte")), _parse(body.get(f"{field_name}_lte"))
            dag_ids = body.get("dag_ids")
            found = [
                fake.dag_run(run)
                for (dag, logical), run in sorted(fake.runs.items(), key=lambda item: (item[0][0], item[0][1]))
                if (not dag_ids or dag in dag_ids)
                and (gte is None or logical >= gte)
                and (lte is None or logical <= lte)
            ]
            return self._page(found, body, "dag_runs")

        def _task_instances(self, body: dict) -> dict:
            dag_ids, run_ids, task_ids = body.get("dag_ids"), body.get("dag_run_ids"), body.get("task_ids")
            found = []
            for run in fake.runs.values():
                if (dag_ids and run["dag_id"] not in dag_ids) or (run_ids and run["run_id"] not in run_ids):
                    continue
                for task_id in run["tasks"]:
                    if not task_ids or task_id in task_ids:
                        found += fake.task_instances(run, task_id)
            return self._page(found, body, "task_instances")

        def do_GET(self):  # noqa: N802 - http.server's name
            self._handle("GET")

        def do_POST(self):  # noqa: N802 - http.server's name
            self._handle("POST")

    return Handler


class serve:  # noqa: N801 - used as `with serve("v2") as fake:`
    """Run a FakeAirflow on 127.0.0.1 (a free port) in a thread for the `with` block."""

    def __init__(self, version: str):
        self.fake = FakeAirflow(version)

    def __enter__(self) -> FakeAirflow:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self.fake.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.fake

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
