"""CloudWatch Logs lines of a remote job (SageMaker Processing, Glue) into the Dagster log."""

from collections import deque
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["LogFollower"]

LAST_LINES = 20


class LogFollower:
    """Forwards the lines of a log group's streams named `<stream_prefix>...` to `emit` as
    `[label] line`, each once, in time order; keeps the last lines for a failure message."""

    def __init__(self, client: Any, group: str, stream_prefix: str, label: str, emit: Callable[[str], Any]) -> None:
        self._client, self._group, self._prefix, self._job, self._emit = client, group, stream_prefix, label, emit
        self._start = 0
        self._seen: set[str] = set()  # event ids at the latest timestamp read
        self.last: deque[str] = deque(maxlen=LAST_LINES)

    def poll(self) -> None:
        kwargs: dict[str, Any] = {
            "logGroupName": self._group,
            "logStreamNamePrefix": self._prefix,
            "startTime": self._start,
        }
        try:
            while True:
                page = self._client.filter_log_events(**kwargs)
                for event in sorted(page.get("events", []), key=lambda e: (e["timestamp"], e.get("eventId", ""))):
                    # checked here too: not every endpoint applies logStreamNamePrefix (moto does not)
                    if not event.get("logStreamName", self._prefix).startswith(self._prefix):
                        continue
                    event_id = event.get("eventId") or f"{event['logStreamName']}:{event['timestamp']}"
                    if event_id in self._seen:
                        continue
                    if event["timestamp"] > self._start:
                        self._start, self._seen = event["timestamp"], set()
                    self._seen.add(event_id)
                    line = event["message"].rstrip()
                    self.last.append(line)
                    self._emit(f"[{self._job}] {line}")
                if not page.get("nextToken"):
                    return
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":  # no logs yet
                self._emit(f"[{self._job}] could not read CloudWatch logs: {exc}")
        except BotoCoreError as exc:
            self._emit(f"[{self._job}] could not read CloudWatch logs: {exc}")
