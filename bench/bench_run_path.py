"""LOCAL run-path benchmark: one pipeline's run as the UI launches it, against execute_in_process.

queued (the UI's path): a temporary DAGSTER_HOME whose dagster.yaml is the project's (ml_pipelines/instance/; the
    QueuedRunCoordinator of `make dev`) plus the DefaultRunLauncher, a gRPC code server
    (`dagster code-server start -m ml_pipelines.definitions`), `dagster-daemon run` to dequeue
    and a `dagster-webserver`, all on 127.0.0.1 and all started and stopped by this script.
    Each run is submitted as the UI's "Materialize" for one partition does: GraphQL asks for the
    partition's tags and run config, then `launchRun` on the implicit asset job with an
    explicit asset selection. The daemon dequeues it, the code server starts a run worker
    (`dagster api execute_run`), whose executor starts the steps.
in-process: `execute_in_process` of the same selection and partition in this process (the code
    location is loaded once, untimed), on the same instance.

The selection is the pipeline's group minus its external waits (kind `sensor`, metadata
step_kind `external_wait`: not materializable here), so it does not depend on how many ops a
pipeline has. Per run, from the event log:
  wall       submit (the launchRun request / the execute_in_process call) -> RUN_SUCCESS
  steps sum  the sum over steps of STEP_START -> STEP_SUCCESS
  critical   the longest chain of step durations through the run's execution plan
  overhead   wall - critical
  wall - sum what is not inside a step (in-process runs steps one at a time, so its wall -
             critical also counts steps that could have run side by side)
and, for queued runs, where the time before the first step goes (enqueue, daemon dequeue,
run worker start and code load, step start). Both paths get an untimed warm-up run first (envs, JVM,
caches); the storage mirror is emptied before every run; runs alternate between the paths.
Medians over --repeat runs are printed.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_run_path.py [--path queued|in-process|both]
           [--repeat 3] [--pipeline max_ds_ViewershipFeatures] [--partition 2024-01-05]
           [--dequeue-interval S] [--module ml_pipelines.definitions] [--after PIPELINE] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this worktree's ml_pipelines, not the one installed in the venv
BIN = Path(sys.executable).parent
LOCATION = "ml_pipelines"
JOB = "__ASSET_JOB"
# Dagster's console logger at ERROR for the in-process runs: the event log still gets everything.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_external_wait(kinds, metadata_step_kind: str | None) -> bool:
    return "sensor" in kinds or metadata_step_kind == "external_wait"


# ------------------------------------------------------------------------------ event log


def analyse(instance: Any, run_id: str, submitted: float) -> dict[str, Any]:
    """Wall, per-step durations, critical path and phase timestamps of a finished run."""
    first: dict[str, float] = {}
    steps: dict[str, list[float | None]] = {}
    worker_starting: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type.name  # RUN_SUCCESS, not its legacy value PIPELINE_SUCCESS
        first.setdefault(kind, record.timestamp)
        if kind == "STEP_WORKER_STARTING":
            worker_starting.setdefault(record.step_key, record.timestamp)
        elif kind == "STEP_START":
            steps.setdefault(record.step_key, [record.timestamp, None])
        elif kind == "STEP_SUCCESS":
            steps[record.step_key][1] = record.timestamp
    durations = {key: end - start for key, (start, end) in steps.items() if end is not None}
    run = instance.get_run_by_id(run_id)
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    upstream = {s.key: {h.step_key for i in s.inputs for h in i.upstream_output_handles} for s in plan.steps}
    finish: dict[str, float] = {}

    def chain(key: str) -> float:  # the longest chain of durations ending with this step
        if key not in finish:
            finish[key] = durations.get(key, 0.0) + max((chain(u) for u in upstream.get(key, ())), default=0.0)
        return finish[key]

    critical = max((chain(k) for k in durations), default=0.0)
    starts = [s for s, _ in steps.values()]
    ends = [e for _, e in steps.values() if e is not None]
    wall = first["RUN_SUCCESS"] - submitted
    return {
        "wall": wall,
        "steps": durations,
        "sum": sum(durations.values()),
        "critical": critical,
        "overhead": wall - critical,
        "phases": _phases(first, submitted, min(starts, default=None), max(ends, default=None)),
        # a step's own process: from the executor starting it to the step starting in it
        "process_starts": [steps[k][0] - t for k, t in worker_starting.items() if k in steps],
    }


def _phases(first: dict[str, float], submitted: float, step0: float | None, step1: float | None) -> dict[str, float]:
    marks = [("submitted", submitted)]
    for label, kind in [
        ("enqueued", "RUN_ENQUEUED"),
        ("dequeued", "RUN_DEQUEUED"),
        ("launched (RUN_STARTING)", "RUN_STARTING"),
        ("run started (RUN_START)", "RUN_START"),
    ]:
        if kind in first:
            marks.append((label, first[kind]))
    if step0 is not None:
        marks += [("first step started", step0), ("last step succeeded", step1)]
    marks.append(("run succeeded", first["RUN_SUCCESS"]))
    return {f"{a} -> {b}": tb - ta for (a, ta), (b, tb) in zip(marks, marks[1:], strict=False)}


def failure_text(instance: Any, run_id: str) -> str:
    lines = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type.name in ("STEP_FAILURE", "RUN_FAILURE", "ENGINE_EVENT"):
            data = event.event_specific_data
            error = getattr(data, "error", None)
            if event.event_type.name != "ENGINE_EVENT" or error is not None:
                lines.append(f"{event.event_type.name} {record.step_key or ''}: {event.message or ''}")
                if error is not None:
                    lines.append(error.to_string())
    return "\n".join(lines)[-4000:]


# ------------------------------------------------------------------------------ queued (UI) path


class Processes:
    """Child processes in their own sessions; stopped (whole process group) on close."""

    def __init__(self, logs: Path, env: dict[str, str], cwd: Path) -> None:
        self.logs, self.env, self.cwd = logs, env, cwd
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}):\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-chars:]

    def close(self) -> None:
        """SIGTERM each child's process group, wait up to 20 s, then SIGKILL what is left in
        the group (a run worker, the proxied code server). A group already gone is fine."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL below
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class QueuedPath:
    def __init__(
        self, tmp: Path, env: dict[str, str], module: str, dequeue_interval: int | None, stack: ExitStack
    ) -> None:
        from dagster import DagsterInstance

        self.home = tmp / "dagster_home"
        self.home.mkdir()
        from ml_pipelines.dagster_home import instance_config_text

        config = yaml.safe_load(instance_config_text()) or {}
        config.setdefault(
            "run_coordinator",
            {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator", "config": {}},
        )
        if dequeue_interval is not None:
            config["run_coordinator"].setdefault("config", {})["dequeue_interval_seconds"] = dequeue_interval
        config["run_launcher"] = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
        config["telemetry"] = {"enabled": False}
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        grpc_port, web_port = free_port(), free_port()
        workspace = tmp / "workspace.yaml"
        workspace.write_text(
            yaml.safe_dump(
                {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": LOCATION}}]}
            )
        )
        logs = tmp / "logs"
        logs.mkdir()
        self.procs = Processes(logs, {**env, "DAGSTER_HOME": str(self.home)}, tmp)
        stack.callback(self.procs.close)
        start = time.perf_counter()
        self.procs.start(
            "code-server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                module,
                "-h",
                "127.0.0.1",
                "-p",
                str(grpc_port),
                "--location-name",
                LOCATION,
            ],
        )
        self._wait_code_server(grpc_port)  # the webserver would keep an "unreachable" load error
        self.procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
        self.procs.start(
            "webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", str(workspace)]
        )
        self.url = f"http://127.0.0.1:{web_port}/graphql"
        self._wait_ready(web_port)
        self.ready_s = time.perf_counter() - start
        self.dequeue_interval = config["run_coordinator"].get("config", {}).get("dequeue_interval_seconds", 5)
        self.instance = stack.enter_context(DagsterInstance.from_config(str(self.home)))

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise SystemExit(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def _wait_code_server(self, port: int, timeout: float = 300) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + timeout
        while True:
            self.procs.check_alive()
            try:
                client.list_repositories()  # answers once the code is loaded
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise SystemExit(f"code server not serving in time:\n{self.procs.tail('code-server')}") from None
                time.sleep(0.5)

    def _wait_ready(self, web_port: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:  # the webserver answers, the code location is loaded, the daemon beats
            self.procs.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(
                    "webserver, code server or daemon not ready in time:\n"
                    + "\n".join(f"--- {n}\n{self.procs.tail(n, 1500)}" for n, _ in self.procs.procs)
                )
            try:
                data = self.gql("""{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                    locationOrLoadError { __typename ... on PythonError { message } } } } }
                    instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }""")
            except OSError:
                time.sleep(0.5)
                continue
            entries = data["workspaceOrError"].get("locationEntries") or []
            location = entries[0]["locationOrLoadError"] if entries else None
            if location and location["__typename"] == "PythonError":
                raise SystemExit(f"code location failed to load: {location['message']}")
            daemons = {d["daemonType"]: d["healthy"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]}
            if location and location["__typename"] == "RepositoryLocation" and daemons.get("QUEUED_RUN_COORDINATOR"):
                return
            time.sleep(0.5)

    def selection(self, pipeline: str) -> tuple[str, list[dict], bool]:
        """(repository name, asset keys of the pipeline's group minus its external waits, partitioned?)"""
        repos = self.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
        self.repository = next(
            r["name"] for r in repos["repositoriesOrError"]["nodes"] if r["location"]["name"] == LOCATION
        )
        nodes = self.gql(
            """query($group: AssetGroupSelector!) { assetNodes(group: $group) {
                assetKey { path } isMaterializable isPartitioned kinds
                metadataEntries { label ... on TextMetadataEntry { text } } } }""",
            {"group": {"groupName": pipeline, "repositoryName": self.repository, "repositoryLocationName": LOCATION}},
        )["assetNodes"]
        keys, partitioned = [], False
        for node in nodes:
            step_kind = next((m.get("text") for m in node["metadataEntries"] if m["label"] == "step_kind"), None)
            if node["isMaterializable"] and not is_external_wait(node["kinds"], step_kind):
                keys.append({"path": node["assetKey"]["path"]})
                partitioned = partitioned or node["isPartitioned"]
        return self.repository, keys, partitioned

    def launch(self, keys: list[dict], partition: str | None) -> tuple[str, float]:
        """What the UI's Materialize (one partition) sends; returns (run id, submit time)."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": self.repository, "pipelineName": JOB}
        tags, run_config = [], {}
        if partition is not None:
            part = self.gql(
                """query($selector: PipelineSelector!, $partition: String!, $keys: [AssetKeyInput!]) {
                pipelineOrError(params: $selector) { __typename ... on Pipeline {
                  partition(partitionName: $partition, selectedAssetKeys: $keys) {
                    runConfigOrError { ... on PartitionRunConfig { yaml } }
                    tagsOrError { ... on PartitionTags { results { key value } } } } } } }""",
                {"selector": selector, "partition": partition, "keys": keys},
            )["pipelineOrError"]["partition"]
            tags = part["tagsOrError"].get("results") or [{"key": "dagster/partition", "value": partition}]
            run_config = yaml.safe_load(part["runConfigOrError"].get("yaml") or "{}") or {}
        params = {
            "selector": {**selector, "assetSelection": keys, "assetCheckSelection": []},
            "mode": "default",
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": t["key"], "value": t["value"]} for t in tags]},
        }
        submitted = time.time()
        data = self.gql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack }
                ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }""",
            {"params": params},
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise SystemExit(f"launchRun: {data}")
        return data["run"]["runId"], submitted

    def wait(self, run_id: str, timeout: float) -> None:
        from dagster import DagsterRunStatus

        deadline = time.monotonic() + timeout
        while True:
            status = self.instance.get_run_by_id(run_id).status
            if status == DagsterRunStatus.SUCCESS:
                return
            if status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                raise SystemExit(
                    f"queued run {run_id} {status.value}:\n{failure_text(self.instance, run_id)}\n"
                    f"--- code server log\n{self.procs.tail('code-server')}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"queued run {run_id} still {status.value} after {timeout:.0f}s\n"
                    f"--- daemon log\n{self.procs.tail('daemon')}"
                )
            self.procs.check_alive()
            time.sleep(0.1)

    def run(self, keys: list[dict], partition: str | None, timeout: float) -> dict[str, Any]:
        run_id, submitted = self.launch(keys, partition)
        self.wait(run_id, timeout)
        return analyse(self.instance, run_id, submitted)


# ------------------------------------------------------------------------------ in-process path


class InProcessPath:
    def __init__(self, module: str, instance: Any) -> None:
        import importlib

        start = time.perf_counter()
        self.defs = importlib.import_module(module).defs  # builds the code location from os.environ
        self.load_s = time.perf_counter() - start
        self.job = self.defs.resolve_implicit_global_asset_job_def()
        self.instance = instance

    def selection(self, pipeline: str) -> tuple[list[Any], bool]:
        graph = self.defs.resolve_asset_graph()
        keys, partitioned = [], False
        for node in graph.asset_nodes:
            if node.group_name != pipeline or not node.is_materializable:
                continue
            kinds = {k.split("/", 2)[2] for k in node.tags if k.startswith("dagster/kind/")}
            step_kind = node.metadata.get("step_kind")
            if not is_external_wait(kinds, getattr(step_kind, "value", step_kind)):
                keys.append(node.key)
                partitioned = partitioned or node.is_partitioned
        return keys, partitioned

    def run(self, keys: list[Any], partition: str | None) -> dict[str, Any]:
        submitted = time.time()
        result = self.job.execute_in_process(
            asset_selection=keys,
            partition_key=partition,
            instance=self.instance,
            raise_on_error=False,
            run_config=QUIET,
        )
        if not result.success:
            raise SystemExit(f"in-process run failed:\n{failure_text(self.instance, result.run_id)}")
        return analyse(self.instance, result.run_id, submitted)


def _preparation(after: str | None, module: str, partition: str, storage: Path, stack: ExitStack, queued: Any):
    """Before each run: an empty storage mirror, then `after` materialized (untimed) if given."""
    upstream = None
    if after:
        from dagster import DagsterInstance

        instance = queued.instance if queued else stack.enter_context(DagsterInstance.ephemeral())
        upstream = InProcessPath(module, instance)
        keys, partitioned = upstream.selection(after)
        if not keys:
            raise SystemExit(f"no materializable assets in group {after}")

    def prepare() -> None:
        shutil.rmtree(storage, ignore_errors=True)
        if upstream is not None:
            upstream.run(keys, partition if partitioned else None)

    return prepare


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["queued", "in-process", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pipeline", default="max_ds_ViewershipFeatures")
    parser.add_argument("--partition", default="2024-01-05")
    parser.add_argument("--module", default="ml_pipelines.definitions", help="the code location's module")
    parser.add_argument(
        "--dequeue-interval",
        type=int,
        default=None,
        help="QueuedRunCoordinator dequeue_interval_seconds (default: dagster.yaml's, else Dagster's 5)",
    )
    parser.add_argument(
        "--after",
        metavar="PIPELINE",
        help="materialize this pipeline in process, untimed, before each run (one whose output --pipeline reads)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="per run, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the tmp dir (logs, homes) and print its path")
    opts = parser.parse_args()
    warnings.simplefilter("ignore")  # Dagster's deprecation/preview warnings: figures only
    paths = ["queued", "in-process"] if opts.path == "both" else [opts.path]

    tmp = Path(tempfile.mkdtemp(prefix="bench-run-path-"))
    ml_home = tmp / "ml_home"
    # one LOCAL project state for both paths (envs built once, by the warm-up)
    ml_env = {"ML_PIPELINES_ENV": "LOCAL", "ML_PIPELINES_PROJECT_DIR": str(REPO), "ML_PIPELINES_HOME": str(ml_home)}
    os.environ.update(ml_env)
    os.environ.pop("ML_PIPELINES_STORAGE_ROOT", None)
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    storage = ml_home / "storage"
    # a SIGTERM to this script stops its children too (ExitStack callbacks run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"bench_run_path: {opts.pipeline}, partition {opts.partition}, paths {', '.join(paths)}, "
        f"{opts.repeat} repetitions, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    try:
        with ExitStack() as stack:
            runners = {}
            queued = None
            if "queued" in paths:
                queued = QueuedPath(tmp, child_env, opts.module, opts.dequeue_interval, stack)
                repository, q_keys, q_partitioned = queued.selection(opts.pipeline)
                if not q_keys:
                    raise SystemExit(f"no materializable assets in group {opts.pipeline}")
                q_partition = opts.partition if q_partitioned else None
                print(
                    f"queued: webserver, daemon and code server ready in {queued.ready_s:.1f}s "
                    f"(dequeue interval {queued.dequeue_interval}s); selection "
                    f"{[('/'.join(k['path'])) for k in q_keys]}",
                    flush=True,
                )
                runners["queued"] = lambda: queued.run(q_keys, q_partition, opts.timeout)
            if "in-process" in paths:
                from dagster import DagsterInstance

                instance = queued.instance if queued else stack.enter_context(DagsterInstance.ephemeral())
                in_process = InProcessPath(opts.module, instance)
                i_keys, i_partitioned = in_process.selection(opts.pipeline)
                if not i_keys:
                    raise SystemExit(f"no materializable assets in group {opts.pipeline}")
                if queued and sorted(k.path for k in i_keys) != sorted(k["path"] for k in q_keys):
                    raise SystemExit(f"selections differ: in-process {i_keys}, queued {q_keys}")
                i_partition = opts.partition if i_partitioned else None
                print(
                    f"in-process: code location loaded in {in_process.load_s:.2f}s; selection "
                    f"{[k.to_user_string() for k in i_keys]}",
                    flush=True,
                )
                runners["in-process"] = lambda: in_process.run(i_keys, i_partition)

            prepare = _preparation(opts.after, opts.module, opts.partition, storage, stack, queued)
            for path, run in runners.items():  # warm-up: envs, first JVM / kernel starts, caches
                prepare()
                start = time.perf_counter()
                run()
                print(f"warm-up {path}: {time.perf_counter() - start:.1f}s", flush=True)
            for rep in range(opts.repeat):
                order = paths if rep % 2 == 0 else paths[::-1]  # alternate who goes first
                for path in order:
                    prepare()
                    r = runners[path]()
                    results[path].append(r)
                    print(
                        f"rep {rep + 1} {path:10}: wall {r['wall']:.2f}s  steps sum {r['sum']:.2f}s  "
                        f"critical {r['critical']:.2f}s  overhead {r['overhead']:.2f}s",
                        flush=True,
                    )
    finally:
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(results, opts.repeat)


def report(results: dict[str, list[dict[str, Any]]], repeat: int) -> None:
    print()
    print(f"medians of {repeat} (s)     wall  steps sum  critical  overhead (wall - critical)  wall - sum")
    for path, runs in results.items():
        print(
            f"{path:20} {median([r['wall'] for r in runs]):8.2f} {median([r['sum'] for r in runs]):10.2f} "
            f"{median([r['critical'] for r in runs]):9.2f} {median([r['overhead'] for r in runs]):9.2f} "
            f"{median([r['wall'] - r['sum'] for r in runs]):28.2f}"
        )
    for path, runs in results.items():
        print(f"\n{path}: per step (STEP_START -> STEP_SUCCESS), medians")
        for step in runs[0]["steps"]:
            print(f"  {step:60} {median([r['steps'].get(step, float('nan')) for r in runs]):7.2f}")
        starts = [s for r in runs for s in r["process_starts"]]
        if starts:
            print(
                f"{path}: a step's process start (STEP_WORKER_STARTING -> STEP_START): median "
                f"{median(starts):.2f}s, max {max(starts):.2f}s over {len(starts)} steps"
            )
        print(f"{path}: timeline, medians")
        for phase in runs[0]["phases"]:
            print(f"  {phase:60} {median([r['phases'].get(phase, float('nan')) for r in runs]):7.2f}")
    if len(results) == 2 and all(results.values()):
        q, i = (median([r["wall"] for r in results[p]]) for p in ("queued", "in-process"))
        print(f"\nqueued - in-process wall: {q - i:+.2f}s (ratio {q / i:.2f})")


if __name__ == "__main__":
    main()
