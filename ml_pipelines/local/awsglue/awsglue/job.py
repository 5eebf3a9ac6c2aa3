"""`Job.init` / `Job.commit`; LOCAL keeps no job bookmarks (every run reads all its input)."""

from __future__ import annotations

from typing import Any

from . import unsupported_attribute, unsupported_module_attribute


class Job:
    def __init__(self, glue_context: Any) -> None:
        self._glue_context = glue_context
        self._name: str | None = None

    def init(self, job_name: str, args: dict[str, Any] | None = None) -> None:
        self._name = job_name
        logger = self._glue_context.get_logger()
        if (args or {}).get("job_bookmark_option") == "job-bookmark-enable":
            logger.warn("job bookmarks are not kept in LOCAL: this run reads all of its input")
        logger.info(f"Job {job_name} started (LOCAL)")

    def commit(self) -> None:
        self._glue_context.get_logger().info(f"Job {self._name} committed (LOCAL)")

    def __getattr__(self, name: str) -> Any:
        raise unsupported_attribute("Job", name)


def __getattr__(name: str) -> Any:
    raise unsupported_module_attribute(__name__, name)
