"""Airflow-compatible Jinja for `templates_dict` values and SQL files.

Templates are rendered in Jinja's `ImmutableSandboxedEnvironment` with `StrictUndefined`
and autoescape off: a template can read the context below and call its macros, but it
cannot reach Python internals (`{{ ''.__class__ }}` fails), mutate lists or dicts, or
build huge strings with `*`/`**`. Text is never evaluated as Python.

Context (see `template_context`), as in Airflow 2 where `ds` is the start of the run's
time window:

- `ds` (`2024-01-31`), `ds_nodash` (`20240131`), `ts` (`2024-01-31T00:00:00+00:00`),
  `ts_nodash` (`20240131T000000`), `ts_nodash_with_tz`;
- `data_interval_start`, `data_interval_end`, `logical_date` and `execution_date` (= the
  window start): UTC datetimes that print in ISO form like Airflow's pendulum datetimes;
- `yesterday_ds`, `tomorrow_ds`, `next_ds` (= the window end's date) and their `_nodash` forms;
- `macros.ds_add(ds, n)`, `macros.ds_format(ds, in_fmt, out_fmt)`, `macros.yr/mo/dy(date)`
  (zero-padded year, month and day of a `YYYY-MM-DD` text), `macros.datetime`,
  `macros.timedelta`;
- `var.value.NAME`, `var.json.NAME` (also `var.value.get('NAME', default)`): pipeline
  variables of the environment (see `variables.py`);
- `ENV`: the environment name (`LOCAL`, `DEV`, `BETA`, `PROD`).
"""

from __future__ import annotations

import difflib
import functools
import operator
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ml_pipelines.config.cron import parse_cron
from ml_pipelines.config.variables import (
    MissingVariableError,
    VariableJsonError,
    Variables,
    as_json,
    as_text,
    lookup_variable,
)

if TYPE_CHECKING:  # config imports nothing of ours at run time; any object with .start/.end works
    from ml_pipelines.plan.model import TimeWindow

MAX_RESULT_LENGTH = 1_000_000  # longest string/list `*` may build in a template
MAX_EXPONENT = 1_000


class TemplateRenderError(ValueError):
    """A template failed to render; the message names where it came from and why.

    Structured, for callers that point at the config (`LoadedPipeline.error_for`):
    `step` (the step name) and `key` (the templates_dict key or the SQL file name as
    written in sql_file_names) when the caller gave them, `line` (the line inside the
    template) when known, and `kind`: "syntax", "undefined", "variable" (a pipeline
    variable missing or not JSON), "not_allowed" (the sandbox refused) or "error" (a
    macro or filter raised). `multiline`: the template has several lines; the message
    then adds the line.
    """

    def __init__(
        self,
        where: str,
        detail: str,
        *,
        step: str | None = None,
        key: str | None = None,
        line: int | None = None,
        kind: str = "error",
        multiline: bool = False,
    ) -> None:
        self.where, self.detail = where, detail
        self.step, self.key, self.line, self.kind, self.multiline = step, key, line, kind, multiline
        suffix = f" (line {line})" if multiline and line is not None else ""
        super().__init__(f"{where}: {detail}{suffix}")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return operator.pow(left, right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                if len(seq) * times > MAX_RESULT_LENGTH:
                    raise SecurityError(f"result longer than {MAX_RESULT_LENGTH}")
        return operator.mul(left, right)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


class _Undefined(StrictUndefined):
    """StrictUndefined whose message names `macros.x` and `var.x` the way they are written."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint is None and isinstance(name, str):
            if isinstance(obj, Macros):
                known = [n for n in dir(Macros) if not n.startswith("_")]
                return f"macros.{name} does not exist{_did_you_mean(name, known)} (macros: {', '.join(known)})"
            if isinstance(obj, _Var):
                return f"var.{name} does not exist; write var.value.NAME or var.json.NAME"
        return super()._undefined_message


_ENV = _Sandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> Any:
    return _ENV.from_string(text)


def template_syntax_error(text: str) -> str | None:
    """None when `text` is valid template syntax, else e.g. "line 1: unexpected '}'"."""
    try:
        _ENV.parse(text)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def undeclared_names(text: str) -> set[str]:
    """Top-level names a template reads (for load-time checks); syntax errors give an empty set."""
    try:
        return set(meta.find_undeclared_variables(_ENV.parse(text)))
    except TemplateSyntaxError:
        return set()


class AirflowDateTime(datetime):
    """A datetime that prints like Airflow's pendulum datetimes: ISO 8601 with a `T`."""

    def __str__(self) -> str:
        return self.isoformat()


def _as_utc(value: datetime) -> AirflowDateTime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return AirflowDateTime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()[:10]
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    raise ValueError(f"{value!r} is not a YYYY-MM-DD date")


class Macros:
    """`macros.*` in templates."""

    datetime = datetime
    timedelta = timedelta

    @staticmethod
    def ds_add(ds: Any, days: Any) -> str:
        """`ds` plus `days` days (negative goes back), as YYYY-MM-DD."""
        days = int(days)
        day = _as_date(ds)
        return (day + timedelta(days=days)).isoformat() if days else day.isoformat()

    @staticmethod
    def ds_format(ds: Any, input_format: str, output_format: str) -> str:
        """Reformat a date text, e.g. ds_format('2024-01-31', '%Y-%m-%d', '%d/%m/%Y')."""
        return datetime.strptime(str(ds), input_format).strftime(output_format)

    @staticmethod
    def yr(value: Any) -> str:
        return f"{_as_date(value).year:04d}"

    @staticmethod
    def mo(value: Any) -> str:
        return f"{_as_date(value).month:02d}"

    @staticmethod
    def dy(value: Any) -> str:
        return f"{_as_date(value).day:02d}"


_MACROS = Macros()


class _VariableAccessor:
    """`var.value` / `var.json`: attribute or item access; a missing variable raises an
    error naming it, the environment and both ways to define it."""

    def __init__(self, values: Mapping[str, Any], env: str, source: Any, as_json_values: bool) -> None:
        self._values, self._env, self._source, self._json = values, env, source, as_json_values

    def _get(self, name: str) -> Any:
        raw = lookup_variable(self._values, name, self._env, self._source)
        return as_json(raw, name, self._env) if self._json else as_text(raw)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    def __getitem__(self, name: str) -> Any:
        return self._get(str(name))

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self._get(str(name))
        except MissingVariableError:
            return default


class _Var:
    def __init__(self, values: Mapping[str, Any], env: str, source: Any) -> None:
        self.value = _VariableAccessor(values, env, source, as_json_values=False)
        self.json = _VariableAccessor(values, env, source, as_json_values=True)


def current_day(now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) of an unpartitioned run's window: the current UTC day, midnight to midnight."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    start = datetime.combine(now.astimezone(timezone.utc).date(), time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


# As plan/windows.py (config cannot import plan): the cron behind each preset.
_PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
SAMPLE_DAY = date(2024, 1, 1)  # the window of an unpartitioned pipeline's dry render
_SEARCH_DAYS = 366 * 9


@dataclass(frozen=True)
class SampleWindow:
    start: datetime
    end: datetime


def _ticks(cron: Any, day: date) -> list[datetime]:
    if not cron.matches_day(day):
        return []
    return [
        datetime.combine(day, time(h, m), tzinfo=timezone.utc) for h in sorted(cron.hours) for m in sorted(cron.minutes)
    ]


@functools.lru_cache(maxsize=256)
def sample_window(schedule_interval: str | None, start_date: date | None) -> SampleWindow:
    """The window templates are dry-rendered for when configs load: the first partition
    of a partitioned pipeline (from the first cron tick on or after start_date to the
    next tick), else the day SAMPLE_DAY. Never depends on today's date."""
    cron_text = _PRESET_CRONS.get(schedule_interval or "", schedule_interval)
    if cron_text and cron_text != "@once" and start_date is not None:
        try:
            cron = parse_cron(cron_text)
        except ValueError:
            cron = None  # reported by the schema
        if cron is not None:
            found: list[datetime] = []
            for offset in range(_SEARCH_DAYS):
                found += _ticks(cron, start_date + timedelta(days=offset))
                if len(found) >= 2:
                    return SampleWindow(found[0], found[1])
    start = datetime.combine(SAMPLE_DAY, time(0), tzinfo=timezone.utc)
    return SampleWindow(start, start + timedelta(days=1))


def template_context(
    window: TimeWindow | None,
    env: str,
    variables: Variables | Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Airflow-compatible context for one run.

    `window` is the run's time window (its start is `ds`). An unpartitioned pipeline
    (`window=None`) uses the run's current date as its window: today 00:00 UTC to
    tomorrow 00:00 UTC (`now` overrides "today", e.g. for `ml-pipelines plan --date`).
    Naive datetimes are taken as UTC. `extra` is merged on top (e.g. a SQL file's
    rendered templates_dict values and `params`).
    """
    raw_start, raw_end = current_day(now) if window is None else (window.start, window.end)
    start, end = _as_utc(raw_start), _as_utc(raw_end)
    day = start.date()
    if isinstance(variables, Variables):
        values, source = variables.values, variables.source
    else:
        values, source = variables, None
    context: dict[str, Any] = {
        "ds": day.isoformat(),
        "ds_nodash": day.strftime("%Y%m%d"),
        "ts": start.isoformat(),
        "ts_nodash": start.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": start.isoformat().replace("-", "").replace(":", ""),
        "data_interval_start": start,
        "data_interval_end": end,
        "logical_date": start,
        "execution_date": start,
        "yesterday_ds": (day - timedelta(days=1)).isoformat(),
        "yesterday_ds_nodash": (day - timedelta(days=1)).strftime("%Y%m%d"),
        "tomorrow_ds": (day + timedelta(days=1)).isoformat(),
        "tomorrow_ds_nodash": (day + timedelta(days=1)).strftime("%Y%m%d"),
        "next_ds": end.date().isoformat(),
        "next_ds_nodash": end.date().strftime("%Y%m%d"),
        "macros": _MACROS,
        "var": _Var(values, env, source),
        "ENV": env,
    }
    if extra:
        context.update(extra)
    return context


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised at: Jinja rewrites the traceback so that
    the template's frames carry template lines (the last such frame is the innermost)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _undefined_detail(message: str, context: Mapping[str, Any]) -> str:
    match = _UNDEFINED_NAME.match(message)
    if match is None:
        return f"undefined: {message}"
    hint = _did_you_mean(match.group(1), [k for k in context if isinstance(k, str)])
    if not hint:
        hint = "; templates know ds, ts, data_interval_start, data_interval_end, macros, var, ENV and more"
        if "params" in context:
            hint += " (a SQL file also sees the step's templates_dict keys and params)"
    return f"undefined: {message}{hint}"


def render(
    text: str, context: Mapping[str, Any], *, where: str, step: str | None = None, key: str | None = None
) -> str:
    """Render one template; any failure raises TemplateRenderError naming `where` (and
    carrying `step`, `key`, the template line and the kind of failure)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    try:
        return _compile(text).render(context)
    except Exception as exc:
        line = exc.lineno if isinstance(exc, TemplateSyntaxError) else _template_line(exc)
        kind, detail = _failure(exc, context)
        raise TemplateRenderError(
            where, detail, step=step, key=key, line=line, kind=kind, multiline="\n" in text.rstrip("\n")
        ) from None


def _failure(exc: Exception, context: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, detail) of a render failure (see TemplateRenderError)."""
    if isinstance(exc, TemplateSyntaxError):
        return "syntax", f"template syntax error on line {exc.lineno}: {exc.message}"
    if isinstance(exc, SecurityError):
        return "not_allowed", f"not allowed in a template: {exc}"
    if isinstance(exc, UndefinedError):
        return "undefined", _undefined_detail(exc.message or "", context)
    if isinstance(exc, (MissingVariableError, VariableJsonError)):
        return "variable", str(exc)
    if isinstance(exc, TemplateError):
        return "error", f"template error: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"  # a macro's error, e.g. a bad date format


def render_templates_dict(templates: Mapping[str, Any], context: Mapping[str, Any], *, step: str) -> dict[str, str]:
    """Render a step's templates_dict; errors name "step <step>, templates_dict.<key>"."""
    return {
        key: render(value, context, where=f"step {step}, templates_dict.{key}", step=step, key=key)
        for key, value in templates.items()
    }
