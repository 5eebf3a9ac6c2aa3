"""Roll a new image out to the ECS services of an environment (the last step of the models
repo's deploy workflow, deploy/ci/models-repo-workflow.yml).

    python roll_out.py --cluster ml-pipelines-prod --image <registry>/ml-pipelines:<tag> \
        --services ml-pipelines-code-server ml-pipelines-daemon ml-pipelines-webserver [--wait]

For each service, in the order given: its current task definition is registered again as a
new revision with the new image in every container that ran the same repository's image, and
DAGSTER_CURRENT_IMAGE set to it there (the code server reports it, and the EcsRunLauncher
starts run workers from it), and the service is moved to it. The code server goes first: the daemon and webserver reconnect to it. With
--wait, each service must be stable (ECS's `services_stable` waiter) before the next.
Run workers need no step: each run's task definition is made by the EcsRunLauncher from the
code server's image when the run starts.

Only boto3, with its usual credential chain (the workflow's OIDC role) and AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import boto3

# Keys of describe_task_definition's answer that register_task_definition accepts.
REGISTRABLE = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


def repository(image: str) -> str:
    """`registry/name` of `registry/name:tag` or `registry/name@sha256:...`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def with_image(definition: dict[str, Any], image: str) -> tuple[dict[str, Any], list[str]]:
    """The registrable task definition with `image` in the containers of its repository; the
    names of the containers changed."""
    new = {key: definition[key] for key in REGISTRABLE if definition.get(key) not in (None, [], {})}
    changed = []
    containers = []
    for container in definition["containerDefinitions"]:
        container = dict(container)
        if repository(container["image"]) == repository(image):
            container["image"] = image
            others = [item for item in container.get("environment", []) if item["name"] != "DAGSTER_CURRENT_IMAGE"]
            container["environment"] = [*others, {"name": "DAGSTER_CURRENT_IMAGE", "value": image}]
            changed.append(container["name"])
        containers.append(container)
    new["containerDefinitions"] = containers
    return new, changed


def roll_out(cluster: str, services: Sequence[str], image: str, *, wait: bool = False, ecs=None) -> dict[str, str]:
    """service -> the task definition ARN it now runs."""
    ecs = ecs or boto3.client("ecs")
    done: dict[str, str] = {}
    for service in services:
        described = ecs.describe_services(cluster=cluster, services=[service])
        if not described["services"]:
            raise SystemExit(f"{service}: no such service in {cluster}")
        current = described["services"][0]["taskDefinition"]
        definition = ecs.describe_task_definition(taskDefinition=current, include=["TAGS"])
        new, changed = with_image(definition["taskDefinition"], image)
        if not changed:
            raise SystemExit(f"{service}: no container of {current} runs an image of {repository(image)}")
        tags = definition.get("tags") or []
        registered = ecs.register_task_definition(**new, **({"tags": tags} if tags else {}))
        arn = registered["taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=cluster, service=service, taskDefinition=arn)
        print(f"{service}: {current.rsplit('/', 1)[-1]} -> {arn.rsplit('/', 1)[-1]} ({', '.join(changed)})")
        if wait:
            ecs.get_waiter("services_stable").wait(
                cluster=cluster, services=[service], WaiterConfig={"Delay": 15, "MaxAttempts": 60}
            )
        done[service] = arn
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--image", required=True, help="the pushed image, <registry>/<name>:<tag>")
    parser.add_argument("--services", nargs="+", required=True, help="in roll-out order: the code server first")
    parser.add_argument("--wait", action="store_true", help="wait for each service to be stable")
    args = parser.parse_args(argv)
    roll_out(args.cluster, args.services, args.image, wait=args.wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
