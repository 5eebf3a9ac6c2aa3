"""Secret values masked (`***`) in what a step run records, as Airflow's secrets masker does.

What is secret in a step run (`Redactor.for_step`):

- the value of every `ML_PIPELINES_VAR_<NAME>` environment variable (the pipeline variables
  set from the environment) and, when that value is a JSON mapping or list, each text in it;
- the value of every pipeline variable (variables.yml or the environment) and every step
  parameter (parameter file or `templates_dict`) whose name looks secret, at any depth of a
  mapping: a name looks secret when one of its words is in `SECRET_WORDS` or two consecutive
  words form a pair of `SECRET_PAIRS`. Words are split at `_`, `-`, `.`, spaces, digits and
  camelCase, so `db_password`, `apiKey` and `API_TOKEN` look secret and `key_columns`,
  `partition_key` or `author` do not.

Values shorter than `MIN_SECRET_LENGTH` characters are not masked. Each value is also masked
as it reads quoted in JSON, in a Python repr, as a shell word and in a URL, and with its
whitespace collapsed; a text cut short with "..." that ends in the start of a secret has
that start masked.

`run_step` (factory/assets.py) applies one `Redactor` to what the run records: every
record logged through `context.log` during the step (`masking_logs`: the message and any
Dagster event it carries, e.g. Pipes log lines and the "closed with exception" event), the
materialization's metadata (`mask_value`) and the failure it raises (`mask` and
`mask_exception`). Not masked: what the step's process writes to its stdout/stderr without
`context.log` (Dagster's compute-log files), files the step writes (e.g. the executed
notebook), and records of other Python loggers Dagster captures.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from dagster import deserialize_value, serialize_value

# internal to Dagster: the DagsterEvent a log record carries (see dagster/_core/log_manager.py)
from dagster._core.log_manager import get_log_record_event, has_log_record_event, set_log_record_event

from ml_pipelines.config.variables import ENV_VAR_PREFIX

MASK = "***"
MIN_SECRET_LENGTH = 4
SECRET_WORDS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "tokens",
        "apikey",
        "credential",
        "credentials",
        "auth",
        "authorization",
    }
)
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("keyfile", "dict"), ("service", "account")})
_TRUNCATION_MARKS = ("...", "…")
_SERDES_TAGS = ("__class__", "__enum__")  # type names in Dagster's serialized form: not user text
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def name_words(name: str) -> list[str]:
    """The lower-case words of a name: `dbPassword` -> [db, password], `API_TOKEN` -> [api, token]."""
    return [w.lower() for w in _WORD.findall(name)]


def is_secret_name(name: Any) -> bool:
    words = name_words(str(name))
    return any(w in SECRET_WORDS for w in words) or any(pair in SECRET_PAIRS for pair in pairwise(words))


def _texts(value: Any) -> Iterator[str]:
    """A value as text (JSON for mappings and lists) and every text inside it."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (Mapping, list, tuple)):
        yield json.dumps(value, default=str)
        for item in value.values() if isinstance(value, Mapping) else value:
            yield from _texts(item)
        return
    text = str(value)
    yield text
    if isinstance(value, str) and text.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return
        if isinstance(parsed, (dict, list)):
            yield from _texts(parsed)


def _named_secrets(value: Any) -> Iterator[str]:
    """The texts under secret-looking names in a mapping (or list, or JSON text), at any depth."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(item) if is_secret_name(key) else _named_secrets(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _named_secrets(item)


def _variants(secret: str) -> set[str]:
    """How a secret reads once quoted or reflowed by what logs it."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        shlex.quote(secret),
        quote(secret, safe=""),
        " ".join(secret.split()),
    }


class Redactor:
    """Masks a fixed set of secret texts in text, metadata, Dagster events and exceptions."""

    def __init__(self, secrets: Iterator[str] | list[str] | set[str] = ()) -> None:
        found = {v for s in secrets if len(s) >= MIN_SECRET_LENGTH for v in _variants(s)}
        self.secrets = tuple(sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))
        self._pattern = re.compile("|".join(map(re.escape, self.secrets))) if self.secrets else None

    @classmethod
    def for_step(
        cls,
        variables: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Redactor:
        """The secrets of a step run: `ML_PIPELINES_VAR_*` values in `environ` (default os.environ),
        and the values of secret-looking names among the variables and the step's parameters."""
        environ = os.environ if environ is None else environ
        secrets: set[str] = set()
        for var, text in environ.items():
            if var.startswith(ENV_VAR_PREFIX) and len(var) > len(ENV_VAR_PREFIX):
                secrets.update(_texts(text))
        secrets.update(_named_secrets(dict(variables)))
        secrets.update(_named_secrets(dict(parameters or {})))
        return cls(secrets)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def leaks(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        masked = self._pattern.sub(MASK, text)
        for mark in _TRUNCATION_MARKS:
            if masked.endswith(mark):
                return self._mask_cut_secret(masked[: -len(mark)]) + mark
        return masked

    def _mask_cut_secret(self, body: str) -> str:
        """`body` with a trailing start of a secret (a text truncated mid-secret) masked."""
        for secret in self.secrets:
            for size in range(len(secret) - 1, MIN_SECRET_LENGTH - 1, -1):
                if body.endswith(secret[:size]):
                    return body[:-size] + MASK
        return body

    def mask_value(self, value: Any) -> Any:
        """Texts masked in plain values (text, mappings, lists) and in Dagster's serializable objects
        (MetadataValue, DagsterEvent...); other values (numbers, booleans...) as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if type(value) is dict:
            return {self.mask_value(k): self.mask_value(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.mask_value(v) for v in value)
        try:
            serialized = serialize_value(value)
        except Exception:  # noqa: BLE001 - not a Dagster-serializable object: no text in it to mask
            return value
        if not self.leaks(serialized):
            return value
        return deserialize_value(json.dumps(self._mask_packed(json.loads(serialized))))

    def _mask_packed(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.mask(node)
        if isinstance(node, list):
            return [self._mask_packed(v) for v in node]
        if isinstance(node, dict):
            return {k: v if k in _SERDES_TAGS else self._mask_packed(v) for k, v in node.items()}
        return node

    def mask_exception(self, exc: BaseException) -> bool:
        """Mask, in place, the arguments and text attributes of `exc` and of the exceptions it was
        raised from or while handling. True when none of them reads a secret any more (an exception
        whose text comes from elsewhere may still: raise something else then)."""
        if self._pattern is None:
            return True
        clean = True
        seen: set[int] = set()
        pending: list[BaseException | None] = [exc]
        while pending:
            current = pending.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            try:
                current.args = tuple(self.mask_value(a) for a in current.args)
                for attr, value in list(vars(current).items()):
                    if isinstance(value, (str, list, tuple, dict)):
                        setattr(current, attr, self.mask_value(value))
                clean = clean and not self.leaks(str(current))
            except Exception:  # noqa: BLE001 - an exception that cannot be rewritten or printed
                clean = False
            pending += [current.__cause__, current.__context__]
        return clean

    @contextmanager
    def masking_logs(self, log: logging.Logger) -> Iterator[None]:
        """Mask every record `log` (a step's `context.log`) handles meanwhile, from any thread."""
        if self._pattern is None:
            yield
            return
        masking = _MaskingFilter(self)
        log.addFilter(masking)
        try:
            yield
        finally:
            log.removeFilter(masking)


class _MaskingFilter(logging.Filter):
    """Rewrites a record before the log manager's handlers see it: its message and its Dagster event.

    A filter on the `DagsterLogManager` runs in `Logger.handle`, before its `DagsterLogHandler`
    turns the record into the run's event-log entry (message, user_message, dagster_event)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - msg % args fails: keep the text, masked
            message = f"{record.msg} {record.args}"
        masked = self.redactor.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if has_log_record_event(record):
            set_log_record_event(record, self.redactor.mask_value(get_log_record_event(record)))
        return True
