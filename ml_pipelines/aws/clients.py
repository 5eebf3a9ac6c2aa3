"""boto3 clients for every AWS backend: one session per process, botocore's standard retries.

Clients follow boto3's default chain (credentials, `AWS_REGION`/`AWS_DEFAULT_REGION`,
`AWS_PROFILE`, and `AWS_ENDPOINT_URL`, which boto3 reads itself) unless a backend sets its
`region_name` or `endpoint_url`. A boto3 session costs ~100 ms to create and keeps the
credentials it resolved (refreshing role credentials itself), so each process makes one; a
client from it costs ~5 ms, so each call site asks for a fresh one (sessions are not
thread-safe: creating clients is serialised; a session inherited across fork is not reused).

Retries: botocore's "standard" mode retries throttling (`ThrottlingException`,
`TooManyRequestsException`, `SlowDown`, ...), 5xx and connection errors with exponential
backoff and jitter, up to `MAX_ATTEMPTS` tries per call (the first included).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

__all__ = ["MAX_ATTEMPTS", "client", "session"]

MAX_ATTEMPTS = 8
_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})

_lock = threading.Lock()
_sessions: dict[int, boto3.session.Session] = {}


def session() -> boto3.session.Session:
    """This process's boto3 session (handlers registered on its `events` reach every client
    made after)."""
    with _lock:
        found = _sessions.get(os.getpid())
        if found is None:
            _sessions.clear()
            found = _sessions[os.getpid()] = boto3.session.Session()
        return found


def client(service: str, region_name: str | None = None, endpoint_url: str | None = None) -> Any:
    """A client of `service`; None for region or endpoint means boto3's chain."""
    current = session()
    with _lock:
        return current.client(service, region_name=region_name, endpoint_url=endpoint_url, config=_CONFIG)
