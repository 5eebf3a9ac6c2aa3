"""Airflow-compatible Jinja for `templates_dict` values and SQL files.

Templates are rendered in Jinja's `ImmutableSandboxedEnvironment` with `StrictUndefined`
and autoescape off: a template can read the context below and call its macros, but it
cannot reach Python internals (`{{ ''.__class__ }}` fails) or mutate lists or dicts. Text
is never evaluated as Python.

A render does bounded work (`TemplateRenderError` of kind "limit" past a limit): each
string, list or number an operation builds is checked before it is built (`*`, `**`, `+`,
`%`, `~`, string methods such as `center`/`replace`/`join`/`format`, and the filters that
can grow their input), and every loop iteration, output and call counts against the
render's budget: MAX_OUTPUT_LENGTH characters out, MAX_WRITTEN_LENGTH written in all,
MAX_LOOP_ITERATIONS iterations, MAX_RENDER_SECONDS of wall time.

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

import contextvars
import difflib
import functools
import operator
import re
import string
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from time import monotonic
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from ml_pipelines.config.cron import SEARCH_DAYS, cron_of, parse_cron, ticks_on
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

MAX_RESULT_LENGTH = 1_000_000  # longest string or list (in characters printed) one operation may build
MAX_EXPONENT = 1_000
MAX_INT_BITS = 100_000  # largest integer arithmetic may build (about 30,000 digits)
MAX_OUTPUT_LENGTH = 1_000_000  # longest text one render may produce
MAX_WRITTEN_LENGTH = 10_000_000  # characters one render may write in all: its output, and the
# bodies of macros, `{% set %}` blocks and filter blocks, each time they are written
MAX_LOOP_ITERATIONS = 1_000_000  # iterations of all loops of one render together
MAX_RENDER_SECONDS = 2.0  # wall time of one render, checked at each loop iteration, call and output


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


class TemplateLimitError(SecurityError):
    """A render went past one of the limits above."""


class _Budget:
    """What one render has used so far."""

    __slots__ = ("deadline", "iterations", "written")

    def __init__(self) -> None:
        self.deadline = monotonic() + MAX_RENDER_SECONDS
        self.iterations = 0
        self.written = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _check_time() -> _Budget | None:
    budget = _BUDGET.get()
    if budget is not None and monotonic() > budget.deadline:
        raise TemplateLimitError(f"template took longer than {MAX_RENDER_SECONDS:g} s to render")
    return budget


def _size(value: Any, limit: int = MAX_RESULT_LENGTH) -> int:
    """About how many characters `str(value)` takes (containers: their items, each time an
    item is referenced), counting no further once past `limit`: the work stays bounded."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)  # prints as its attributes
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= limit:
                stack += item.keys()
                stack += item.values()
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 4 * len(item)  # brackets, quotes and separators
            if total <= limit:
                stack += item
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        else:
            total += 32  # dates, floats, undefined values, macros: short
    return total


def _check_size(size: int, what: str) -> None:
    if size > MAX_RESULT_LENGTH:
        raise TemplateLimitError(f"{what} would be longer than {MAX_RESULT_LENGTH:,} characters")


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and value > MAX_RESULT_LENGTH:
        raise TemplateLimitError(f"{what} {value} is larger than {MAX_RESULT_LENGTH:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_NUMBER = re.compile(r"\d+")


def _args_size(args: Any) -> int:
    """The largest printed size among a format's arguments."""
    if isinstance(args, dict):
        args = list(args.values())
    elif not isinstance(args, (tuple, list)):
        args = [args]
    return max((_size(a) for a in args), default=0)


def _check_percent(fmt: Any, args: Any) -> None:
    """`fmt % args`: widths and precisions, and each conversion at most the largest argument."""
    specs = _PERCENT_SPEC.findall(str(fmt))
    ints = list(args.values()) if isinstance(args, dict) else list(args) if isinstance(args, (tuple, list)) else [args]
    for width, precision in specs:
        for number in (width, precision):
            if number == "*":
                for value in ints:
                    _check_int(value, "format width")
            elif number:
                _check_int(int(number[:9]) if len(number) < 9 else MAX_RESULT_LENGTH + 1, "format width")
    _check_size(len(fmt) + len(specs) * _args_size(args), "formatted text")


def _check_format(fmt: str, args: tuple, kwargs: dict) -> None:
    """`fmt.format(...)`: widths in the specs, and each field at most the largest argument."""
    try:
        fields = [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(fmt) if name is not None]
    except ValueError:
        return  # the call itself raises
    for _, spec in fields:
        for number in _NUMBER.findall(spec):
            _check_int(int(number[:9]) if len(number) < 9 else MAX_RESULT_LENGTH + 1, "format width")
        if "{" in spec:
            for value in (*args, *kwargs.values()):
                _check_int(value, "format width")
    arguments = [*args, *kwargs.values()]
    if len(arguments) == 1 and isinstance(arguments[0], dict):  # format_map
        arguments = list(arguments[0].values())
    _check_size(len(fmt) + len(fields) * _args_size(arguments), "formatted text")


def _replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    found = text.count(old) if len(old) else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, len(new) - len(old))


def _check_text_method(name: str, text: str | bytes, args: tuple, kwargs: dict) -> None:
    """Before a string method that can make its result longer than its input runs."""
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_int(args[0] if args else kwargs.get("width"), "width")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_size(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * tabsize, "expanded text")
    elif name == "replace" and len(args) >= 2:
        _check_size(_replaced_size(text, *args[:3]), "replaced text")
    elif name in ("format", "format_map") and isinstance(text, str):
        _check_format(text, args, kwargs)
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        _check_size(len(text) * max(longest, 1), "translated text")


def _checked_join(separator: str | bytes, iterable: Any) -> Any:
    items = list(iterable)
    _check_size(sum(_size(i) for i in items) + len(separator) * len(items), "joined text")
    return separator.join(items)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        _check_time()
        if op == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise TemplateLimitError(f"exponent {right} is larger than {MAX_EXPONENT}")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > MAX_INT_BITS:
                raise TemplateLimitError(f"result larger than {MAX_INT_BITS:,} bits")
            return operator.pow(left, right)
        if op == "+":
            if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
                _check_size(_size(left) + _size(right), "result")
            return operator.add(left, right)
        if op == "%":
            if isinstance(left, (str, bytes)):
                _check_percent(left, right)
            return operator.mod(left, right)
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimitError(f"result larger than {MAX_INT_BITS:,} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                _check_size(_size(seq) * times, "result")
        return operator.mul(left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        _check_time()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(__obj, "__name__", "")
            if name == "join" and len(args) == 1 and not kwargs:
                return _checked_join(owner, args[0])
            _check_text_method(name, owner, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """Jinja's sandboxed `str.format`/`format_map`, checked first (see `_check_format`)."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_time()
            _check_format(text, args, kwargs)
            return wrapped(*args, **kwargs)

        return checked

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        return super()._generate(_Bounded().visit(source), name, filename, defer_init=defer_init)


class _Bounded(NodeTransformer):
    """Puts each loop's iterable, each output and each `~` through the budget's filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_budget_loop", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            nodes.Filter(
                nodes.Const(child.data) if isinstance(child, nodes.TemplateData) else child,
                "_budget_write",
                [],
                [],
                None,
                None,
                lineno=child.lineno,
            )
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes), "_budget_concat", [], [], None, None, lineno=node.lineno)


class _CountedLoop:
    """A loop's iterable whose every step counts against the render's budget."""

    def __init__(self, iterable: Any) -> None:
        self._iterable = iterable

    def __len__(self) -> int:
        return len(self._iterable)

    def __iter__(self) -> Any:
        for item in self._iterable:
            budget = _check_time()
            if budget is not None:
                budget.iterations += 1
                if budget.iterations > MAX_LOOP_ITERATIONS:
                    raise TemplateLimitError(f"template loops ran more than {MAX_LOOP_ITERATIONS:,} iterations")
            yield item


@pass_context  # never folded into a constant when compiled: literal text counts at each write
def _budget_write(_context: Any, value: Any) -> str:
    budget = _check_time()
    _check_size(_size(value), "output")
    text = str(value)
    if budget is not None:
        budget.written += len(text)
        if budget.written > MAX_WRITTEN_LENGTH:
            raise TemplateLimitError(f"template wrote more than {MAX_WRITTEN_LENGTH:,} characters")
    return text


def _budget_concat(values: list) -> str:
    _check_time()
    _check_size(sum(_size(v) for v in values), "joined text")
    return "".join(str(v) for v in values)


def _checked_filter(check: Any, name: str) -> Any:
    original = FILTERS[name]

    skip = 0 if _PassArg.from_obj(original) is None else 1  # the context/environment Jinja passes first

    @functools.wraps(original)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    return checked


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    per_line = width if isinstance(width, int) else len(str(width))
    text = str(s) if isinstance(s, str) else ""
    _check_size(len(text) + (text.count("\n") + 1) * per_line, "indented text")


def _check_wordwrap(s: Any, width: int = 79, break_long_words: bool = True, wrapstring: Any = None, **_: Any) -> None:
    text = str(s) if isinstance(s, str) else ""
    lines = len(text) // max(int(width) if isinstance(width, int) else 1, 1) + text.count("\n") + 1
    _check_size(len(text) + lines * len(wrapstring or "\n"), "wrapped text")


def _check_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        _check_size(_replaced_size(s, old, new, -1 if count is None else count), "replaced text")


def _check_join(value: Any, d: Any = "", attribute: Any = None) -> None:
    items = list(value) if isinstance(value, (list, tuple, set, frozenset, dict, str)) else []
    _check_size(sum(_size(i) for i in items) + len(str(d)) * len(items), "joined text")


def _check_value(value: Any, *_: Any, **__: Any) -> None:
    _check_size(_size(value), "text")


def _check_sum(value: Any, attribute: Any = None, start: Any = 0) -> None:
    if isinstance(value, (list, tuple)):
        _check_size(_size(value) + _size(start), "sum")


def _check_count(name: str) -> Any:
    def check(value: Any, count: Any = 1, fill_with: Any = None, *_: Any, **kwargs: Any) -> None:
        if name == "slice" or (fill_with if fill_with is not None else kwargs.get("fill_with")) is not None:
            _check_int(count, f"{name} size")

    return check


def _check_urlize(value: Any, *_: Any, target: Any = None, rel: Any = None, **__: Any) -> None:
    _check_value(value)
    for extra in (target, rel):
        if extra is not None and len(str(extra)) > 1_000:
            raise TemplateLimitError("urlize target and rel are limited to 1,000 characters")


_CHECKED_FILTERS = {
    "center": lambda value, width=80: _check_int(width, "width"),
    "indent": _check_indent,
    "format": lambda value, *args, **kwargs: _check_percent(value, kwargs or args),
    "join": _check_join,
    "replace": _check_replace,
    "wordwrap": _check_wordwrap,
    "batch": _check_count("batch"),
    "slice": _check_count("slice"),
    "string": _check_value,
    "tojson": _check_value,
    "pprint": _check_value,
    "list": _check_value,
    "sum": _check_sum,
    "urlize": _check_urlize,
}


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 (Jinja's names)
    _check_size(int(n) * int(max) * 12, "lorem ipsum")
    return generate_lorem_ipsum(n, html, min, max)


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
_ENV.filters.update({name: _checked_filter(check, name) for name, check in _CHECKED_FILTERS.items()})
_ENV.filters.update(_budget_loop=_CountedLoop, _budget_write=_budget_write, _budget_concat=_budget_concat)
_ENV.globals["lipsum"] = _bounded_lipsum


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


SAMPLE_DAY = date(2024, 1, 1)  # the window of an unpartitioned pipeline's dry render


@dataclass(frozen=True)
class SampleWindow:
    start: datetime
    end: datetime


@functools.lru_cache(maxsize=256)
def sample_window(schedule_interval: str | None, start_date: date | None) -> SampleWindow:
    """The window templates are dry-rendered for when configs load: the first partition
    of a partitioned pipeline (from the first cron tick on or after start_date to the
    next tick), else the day SAMPLE_DAY. Never depends on today's date."""
    cron_text = cron_of(schedule_interval)
    if cron_text and start_date is not None:
        try:
            cron = parse_cron(cron_text)
        except ValueError:
            cron = None  # reported by the schema
        if cron is not None:
            found: list[datetime] = []
            for offset in range(SEARCH_DAYS):
                found += ticks_on(cron, start_date + timedelta(days=offset))
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
    token = _BUDGET.set(_Budget())
    try:
        return _render_bounded(_compile(text), context)
    except Exception as exc:
        line = exc.lineno if isinstance(exc, TemplateSyntaxError) else _template_line(exc)
        kind, detail = _failure(exc, context)
        raise TemplateRenderError(
            where, detail, step=step, key=key, line=line, kind=kind, multiline="\n" in text.rstrip("\n")
        ) from None
    finally:
        _BUDGET.reset(token)


def _render_bounded(template: Any, context: Mapping[str, Any]) -> str:
    """`template.render(context)`, streamed so that the output's length and the render's
    time are checked as it goes."""
    chunks, length = [], 0
    for chunk in template.generate(context):
        length += len(chunk)
        if length > MAX_OUTPUT_LENGTH:
            raise TemplateLimitError(f"template output longer than {MAX_OUTPUT_LENGTH:,} characters")
        _check_time()
        chunks.append(chunk)
    return "".join(chunks)


def _failure(exc: Exception, context: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, detail) of a render failure (see TemplateRenderError)."""
    if isinstance(exc, TemplateSyntaxError):
        return "syntax", f"template syntax error on line {exc.lineno}: {exc.message}"
    if isinstance(exc, TemplateLimitError):
        return "limit", f"{exc} (templates are limited, see the config reference)"
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
