"""What the UI gets for a shape: starts `dagster dev` on 127.0.0.1 for a small location and asks
its GraphQL for schedules (target, tags, description), asset groups, and which instigators an
asset page shows. Stops the server it started (its process group) at the end.

Usage: BENCH_PIPELINES=12 python bench/shapes/ui_check.py direct_threshold [port]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def gql(port: int, query: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _reset_signals():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()


def main() -> None:
    variant = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 3917
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "DAGSTER_HOME": home, "PYTHONPATH": str(HERE)}
        env.setdefault("BENCH_PIPELINES", "12")
        log = open(Path(home) / "dev.log", "w")
        proc = subprocess.Popen([DAGSTER, "dev", "-m", f"v_{variant}", "-h", "127.0.0.1", "-p", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_reset_signals)
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                    break
                except Exception:
                    time.sleep(0.5)
            for _ in range(240):  # the code location loads after the webserver is up
                r = gql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
                if r.get("data", {}).get("repositoriesOrError", {}).get("nodes"):
                    break
                time.sleep(0.5)
            q = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name
                  schedules { name cronSchedule pipelineName executionTimezone description
                              assetSelection { assetSelectionString }
                              tags { key value } scheduleState { status }
                              futureTicks(limit: 1) { results { timestamp } } }
                  assetGroups { groupName }
                  pipelines { name isAssetJob } } } } }"""
            repo = gql(port, q)["data"]["repositoriesOrError"]["nodes"][0]
            print(f"repository {repo['name']}: {len(repo['schedules'])} schedules, "
                  f"{len(repo['assetGroups'])} asset groups, jobs {[p['name'] for p in repo['pipelines']]}")
            print("first schedule:", json.dumps(repo["schedules"][0], indent=1))
            a = gql(port, """{ assetNodes(assetKeys: [{path: ["bench_p0003_Daily", "write_to_snowflake"]}]) {
                    assetKey { path } groupName opName jobNames isMaterializable isPartitioned
                    partitionDefinition { description }
                    targetingInstigators { ... on Schedule { name } ... on Sensor { name } }
                    dependencyKeys { path } } }""")
            print("asset node:", json.dumps(a["data"]["assetNodes"][0], indent=1))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
