"""Load every pipeline of a project, and explain every bad one.

`load_project(root, env, session)` reads `model_configs/*.yml|*.yaml` (top level only;
`model_configs/common/` holds `!include` fragments and `variables.yml|yaml` holds
pipeline variables: neither is a pipeline config), validates each pipeline against the
schema, cross-checks it against the model folders, and returns a `Project`: the valid
pipelines and every error. It never raises on bad input. One broken pipeline never hides
the others, even in the same file; a problem of the file itself (syntax, a bad
`CommonConf`, an unknown top-level key) drops every pipeline of that file. What the load
works out from files is shared through its `LoadSession` (see session.py).

A config that is a symlink leaving the project is an error and is not read; `!include`
stays in model_configs/. At most MAX_ERRORS_PER_FILE errors are kept per file (then one
"and N more" error), so a broken-config asset's description stays small.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from ml_pipelines.config.checks import (
    check_graph,
    check_pipeline,
    did_you_mean,
    load_env_variables,
    op_name,
    render_failure_message,
)
from ml_pipelines.config.errors import ConfigError, KeyPath, dedupe, display_path, format_key_path
from ml_pipelines.config.parameters import ParameterFileError
from ml_pipelines.config.paths import ProjectPaths, StepFiles
from ml_pipelines.config.schema import ENVIRONMENTS, NAME_PREFIXES, GlueStep, PipelineConfig, StepBase
from ml_pipelines.config.session import LoadSession
from ml_pipelines.config.templates import TemplateRenderError
from ml_pipelines.config.variables import VariablesError
from ml_pipelines.config.yaml_loader import YamlDocument, load_yaml

CONFIG_SUFFIXES = (".yml", ".yaml")
NOT_PIPELINE_CONFIGS = ("variables.yml", "variables.yaml")
TOP_LEVEL_KEYS = ("CommonConf", "dags")
MAX_ERRORS_PER_FILE = 50


@dataclass(frozen=True)
class LoadedPipeline:
    """One valid pipeline, and where its steps were written.

    A step that fails when a run plans it (a template, a parameter file changed since the
    load...) is reported at the config key at fault, as load errors are:

    - `locate(step_name, *keys)` -> (file, line, key path text), e.g.
      `locate("write_to_snowflake", "templates_dict", "dt")` or
      `locate("write_to_snowflake", "sql_file_names", "merge")` (an index or the name as
      written); a key not recorded at load gets the line of its nearest recorded parent;
    - `error_at(step_name, keys, message)` -> ConfigError there;
    - `error_for(step_name, exc)` -> ConfigError for a TemplateRenderError (at its
      templates_dict key or SQL file, naming the line in the template) or a
      ParameterFileError (at param_file_name, or the step), else at the step.

    Lines are recorded at load for each task, its templates_dict keys, its
    sql_file_names items and its param_file_name.
    """

    config: PipelineConfig
    family: str  # the key under `dags` (e.g. "sagemaker")
    source: Path  # the config file
    line: int  # line of the `dags.<family>` key
    common: dict[str, Any]  # CommonConf
    files: dict[str, StepFiles]  # by step name
    # (step name, *keys) -> line in `source`, or (file, line) for a key written in an include
    locations: dict[tuple[str | int, ...], int | tuple[Path, int]] = field(
        default_factory=dict, compare=False, repr=False
    )
    root: Path | None = field(default=None, compare=False, repr=False)  # the project dir, for display

    @property
    def pipeline_id(self) -> str:
        return self.config.pipeline_id

    def locate(self, step_name: str, *keys: str | int) -> tuple[Path, int, str]:
        """(file, line, key path text) of `keys` under the step (see the class doc)."""
        index = next((i for i, s in enumerate(self.config.tasks) if s.name == step_name), None)
        if index is None:  # not a step of this pipeline: the pipeline itself
            return self.source, self.line, f"dags.{self.family}"
        step = self.config.tasks[index]
        parts = list(keys)
        if len(parts) >= 2 and parts[0] == "sql_file_names" and isinstance(parts[1], str):
            names = list(getattr(step, "sql_file_names", ()))
            if parts[1] in names:
                parts[1] = names.index(parts[1])
        text = f"dags.{self.family}.tasks[{index}]({step_name})" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts
        )
        for n in range(len(parts), -1, -1):
            where = self.locations.get((step_name, *parts[:n]))
            if where is not None:
                return (self.source, where, text) if isinstance(where, int) else (*where, text)
        return self.source, self.line, text

    def error_at(self, step_name: str, keys: tuple[str | int, ...] | list[str | int], message: str) -> ConfigError:
        file, line, key_path = self.locate(step_name, *keys)
        return ConfigError(file, line, key_path, message, root=self.root)

    def error_for(self, step_name: str, exc: Exception) -> ConfigError:
        """A plan-time failure of the step as a ConfigError at the config key at fault."""
        step = next((s for s in self.config.tasks if s.name == step_name), None)
        files = self.files.get(step_name)
        rel = self._rel
        if isinstance(exc, TemplateRenderError) and step is not None and exc.key is not None:
            if exc.key in step.templates_dict:
                return self.error_at(step_name, ("templates_dict", exc.key), render_failure_message(exc))
            names = list(getattr(step, "sql_file_names", ()))
            if exc.key in names:
                j = names.index(exc.key)
                shown = rel(files.sql_files[j]) if files is not None and j < len(files.sql_files) else exc.key
                return self.error_at(step_name, ("sql_file_names", j), render_failure_message(exc, sql_file=shown))
        if isinstance(exc, ParameterFileError) and step is not None:
            keys = ("Details", "param_file_name") if isinstance(step, GlueStep) else ("param_file_name",)
            found = self.locations.get((step_name, *keys))
            where = f"{rel(exc.path)}:{exc.line}" if exc.line else rel(exc.path)
            return self.error_at(step_name, keys if found else (), f"parameter file {where}: {exc.detail}")
        return self.error_at(step_name, (), str(exc))

    def _rel(self, path: Path) -> str:
        return display_path(path, self.root)


@dataclass
class Project:
    paths: ProjectPaths
    env: str = "LOCAL"
    pipelines: list[LoadedPipeline] = field(default_factory=list)
    errors: list[ConfigError] = field(default_factory=list)
    broken: dict[Path, list[ConfigError]] = field(default_factory=dict)  # config file -> its errors
    invalid_pipeline_ids: dict[str, Path] = field(default_factory=dict)  # ids seen in rejected pipelines
    config_files: list[Path] = field(default_factory=list)
    session: LoadSession = field(default_factory=LoadSession)  # the load that made it (see session.py)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def pipeline_ids(self) -> list[str]:
        return [p.pipeline_id for p in self.pipelines]

    def pipeline(self, pipeline_id: str) -> LoadedPipeline:
        for loaded in self.pipelines:
            if loaded.pipeline_id == pipeline_id:
                return loaded
        raise KeyError(self.unknown_pipeline_message(pipeline_id))

    def unknown_pipeline_message(self, pipeline_id: str) -> str:
        if pipeline_id in self.invalid_pipeline_ids:
            source = self.paths.rel(self.invalid_pipeline_ids[pipeline_id])
            return f"pipeline {pipeline_id!r} ({source}) has config errors; run `ml-pipelines validate`"
        hint = did_you_mean(pipeline_id, self.pipeline_ids)
        known = ", ".join(self.pipeline_ids) or "none"
        return f"unknown pipeline {pipeline_id!r}{hint} (pipelines: {known})"


def config_files(paths: ProjectPaths) -> list[Path]:
    folder = paths.model_configs
    if not folder.is_dir():
        return []
    # scandir: an entry knows whether it is a file without a stat per file (symlinks are followed).
    with os.scandir(folder) as entries:
        found = [(folder / entry.name, entry) for entry in entries]
    return sorted(
        p
        for p, entry in found
        if entry.is_file() and p.suffix.lower() in CONFIG_SUFFIXES and p.name.lower() not in NOT_PIPELINE_CONFIGS
    )


def load_project(root: str | Path | None = None, env: str = "LOCAL", session: LoadSession | None = None) -> Project:
    """Every pipeline of the project at `root` (default: see `paths.project_root`) for `env`.

    `session`: this load's session (see session.py), e.g. one that reuses the load cache;
    default: a fresh one. It is `project.session`: pass it on to the code versions and
    descriptions of this load, and `save()` it to keep its results for the next load."""
    env = (env or "LOCAL").upper()
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; use one of {', '.join(ENVIRONMENTS)}")
    paths = ProjectPaths.for_root(root)
    project = Project(paths=paths, env=env, session=session if session is not None else LoadSession())
    if not paths.model_configs.is_dir():
        project.errors.append(
            ConfigError(paths.model_configs, None, "", f"no model_configs/ folder in {paths.root}", root=paths.root)
        )
        return project
    project.config_files = config_files(paths)
    variables = load_env_variables(paths, env, project.session)
    if isinstance(variables, VariablesError):
        # Every run reads variables.yml; its templates are not dry-rendered until it is fixed.
        error = ConfigError(variables.path, variables.line, "", variables.detail, root=paths.root)
        project.errors.append(error)
        project.broken[variables.path] = [error]
    seen_ids: dict[str, tuple[Path, int]] = {}
    for source in project.config_files:
        escape = project.session.fs.escape(paths.root, source)
        try:
            if escape is not None:
                pipelines, errors = [], [ConfigError(source, None, "", escape, root=paths.root)]
            else:
                pipelines, errors = _load_file(
                    paths, source, env, seen_ids, project.session, project.invalid_pipeline_ids
                )
        except Exception as exc:  # a bug must not hide the other files
            pipelines = []
            errors = [
                ConfigError(
                    source, None, "", f"internal error while loading: {type(exc).__name__}: {exc}", root=paths.root
                )
            ]
        errors = _capped(dedupe(errors), source, paths.root)
        project.pipelines.extend(pipelines)
        if errors:
            project.broken[source] = errors
            project.errors.extend(errors)
    _reject_op_name_clashes(project)
    return project


def _reject_op_name_clashes(project: Project) -> None:
    """Steps of two pipelines whose op names are the same (`a` + step `b__c`, `a__b` + step `c`):
    the later pipeline is rejected, as the code location could not hold both. Clashes inside one
    pipeline are found by its own checks."""
    seen: dict[str, tuple[LoadedPipeline, str]] = {}
    kept = []
    for pipeline in project.pipelines:
        clash = None
        for step in pipeline.config.tasks:
            first = seen.get(op_name(pipeline.pipeline_id, step.name))
            if first is not None and first[0] is not pipeline:
                clash = (step.name, first)
                break
        if clash is None:
            for step in pipeline.config.tasks:
                seen.setdefault(op_name(pipeline.pipeline_id, step.name), (pipeline, step.name))
            kept.append(pipeline)
            continue
        name, (other, other_step) = clash
        file, line, _ = other.locate(other_step)
        error = pipeline.error_at(
            name,
            ("name",),
            f"op name {op_name(pipeline.pipeline_id, name)!r} is also that of step {other_step!r} of pipeline "
            f"{other.pipeline_id!r} ({display_path(file, project.paths.root)}:{line}); rename one of the steps",
        )
        project.errors.append(error)
        project.broken.setdefault(pipeline.source, []).append(error)
        project.invalid_pipeline_ids.setdefault(pipeline.pipeline_id, pipeline.source)
    project.pipelines = kept


def _capped(errors: list[ConfigError], source: Path, root: Path) -> list[ConfigError]:
    """The first MAX_ERRORS_PER_FILE errors, then one that counts the rest."""
    if len(errors) <= MAX_ERRORS_PER_FILE:
        return errors
    more = len(errors) - MAX_ERRORS_PER_FILE
    message = f"and {more} more errors in this file (the first {MAX_ERRORS_PER_FILE} are shown)"
    return [*errors[:MAX_ERRORS_PER_FILE], ConfigError(source, None, "", message, root=root)]


def _raw_pipeline_id(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    parts = [raw.get(k) for k in ("domain", "sub_domain", "action")]
    if all(isinstance(p, (str, int)) and str(p).strip() for p in parts):
        return "_".join(str(p).strip() for p in parts)
    return None


def _load_file(
    paths: ProjectPaths,
    source: Path,
    env: str,
    seen_ids: dict[str, tuple[Path, int]],
    session: LoadSession,
    invalid_ids: dict[str, Path],
) -> tuple[list[LoadedPipeline], list[ConfigError]]:
    # Parsing and schema validation depend only on the file and its includes: an earlier
    # load's result is reused while they are unchanged (the cross-checks always run).
    store, parsed_key = session.store, ("parsed", os.fspath(source))
    reused = store.get(parsed_key)
    if reused is not None:
        doc, validated = reused
    else:
        store.signature(source)  # taken before the read (see LoadStore.put)
        doc, validated = load_yaml(source, root=paths.root, memo=session.yaml, include_root=paths.model_configs), {}
    if doc.fatal:
        return [], doc.issue_errors()
    data = doc.data
    file_errors: list[ConfigError] = []
    dags_prefix = ("dags",)
    # Issues outside any pipeline are the file's own (a bad include of CommonConf, say).
    for issue, error in zip(doc.issues, doc.issue_errors(), strict=True):
        if not (len(issue.path) >= 2 and issue.path[0] == "dags"):
            file_errors.append(error)
    if data is None:
        return [], file_errors + [
            ConfigError(source, 1, "", "the file is empty; expected CommonConf and dags", root=paths.root)
        ]
    if not isinstance(data, dict):
        return [], file_errors + [
            doc.error_at((), f"expected a mapping with {', '.join(TOP_LEVEL_KEYS)}, got {_kind(data)}")
        ]
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            file_errors.append(
                doc.error_at(
                    (key,),
                    f"unknown top-level key {key!r}{did_you_mean(key, TOP_LEVEL_KEYS)} (allowed: {', '.join(TOP_LEVEL_KEYS)})",
                    prefer_key=True,
                )
            )
    common = data.get("CommonConf")
    if common is not None and not isinstance(common, dict):
        file_errors.append(doc.error_at(("CommonConf",), f"CommonConf must be a mapping, got {_kind(common)}"))
    dags = data.get("dags")
    if "dags" not in data:
        file_errors.append(
            doc.error_at(("dags",), "missing required key 'dags' (a mapping of pipelines, e.g. dags: {sagemaker: ...})")
        )
        return [], file_errors
    if not isinstance(dags, dict) or not dags:
        what = "empty" if isinstance(dags, dict) or dags is None else _kind(dags)
        file_errors.append(
            doc.error_at(dags_prefix, f"dags must be a mapping of one or more pipelines, got {what}", prefer_key=True)
        )
        return [], file_errors

    loaded: list[LoadedPipeline] = []
    pipeline_errors: list[ConfigError] = []
    for family, raw in dags.items():
        prefix: KeyPath = ("dags", family)
        errors = doc.errors_under(prefix)
        config = None
        if not isinstance(raw, dict):
            errors.append(
                doc.error_at(
                    prefix, f"a pipeline must be a mapping (domain, sub_domain, action, tasks...), got {_kind(raw)}"
                )
            )
        elif family in validated:
            config = validated[family]
        else:
            try:
                config = validated[family] = PipelineConfig.model_validate(raw)
            except ValidationError as exc:
                errors.extend(schema_errors(exc, doc, prefix))
                errors.extend(check_graph(doc, prefix))  # check_pipeline does it for a valid one
        pipeline_id = config.pipeline_id if config is not None else _raw_pipeline_id(raw)
        line = doc.positions.line(prefix, prefer_key=True) or 1
        if pipeline_id is not None:
            if pipeline_id in seen_ids:
                first_file, first_line = seen_ids[pipeline_id]
                errors.append(
                    doc.error_at(
                        prefix,
                        f"pipeline id {pipeline_id!r} (domain_sub_domain_action) is already defined in "
                        f"{paths.rel(first_file)}:{first_line}; pipeline ids must be unique",
                        prefer_key=True,
                    )
                )
            else:
                seen_ids[pipeline_id] = (source, line)
        files: dict[str, StepFiles] = {}
        if config is not None:  # cross-check even when the YAML had issues: all errors at once
            files, check_errors = check_pipeline(paths, config, doc=doc, prefix=prefix, env=env, session=session)
            errors.extend(check_errors)
        if errors or file_errors or config is None:
            if pipeline_id is not None:
                invalid_ids.setdefault(pipeline_id, source)
            pipeline_errors.extend(errors)
            continue
        common_conf = common if isinstance(common, dict) else {}
        locations = _step_locations(doc, prefix, config)
        loaded.append(LoadedPipeline(config, str(family), source, line, common_conf, files, locations, paths.root))
    if reused is None and not doc.issues and not file_errors and len(validated) == len(dags):
        store.put(parsed_key, (doc, validated), [source, *doc.includes])
    if file_errors:
        loaded = []
    return loaded, _sorted(file_errors + pipeline_errors, source)


def _step_locations(
    doc: YamlDocument, prefix: KeyPath, config: PipelineConfig
) -> dict[tuple[str | int, ...], int | tuple[Path, int]]:
    """(file, line) of each task, its templates_dict keys, sql_file_names items and
    param_file_name, by (step name, *keys): what `LoadedPipeline.locate` answers from."""
    out: dict[tuple[str | int, ...], int | tuple[Path, int]] = {}
    positions, source = doc.positions, doc.file
    raw: Any = doc.data
    for part in (*prefix, "tasks"):
        raw = raw.get(part) if isinstance(raw, dict) else None
    raw_tasks = raw if isinstance(raw, list) else []

    def put(key: tuple[str | int, ...], path: KeyPath, prefer_key: bool = True) -> None:
        mark = positions.find(path, prefer_key)
        if mark is not None:
            out[key] = mark.line if mark.file == source else (mark.file, mark.line)

    for i, step in enumerate(config.tasks):
        task = (*prefix, "tasks", i)
        name = step.name
        put((name,), task, prefer_key=False)
        if step.templates_dict:
            put((name, "templates_dict"), (*task, "templates_dict"))
            for key in step.templates_dict:
                put((name, "templates_dict", key), (*task, "templates_dict", key))
        sql_names = getattr(step, "sql_file_names", None)
        if sql_names:
            put((name, "sql_file_names"), (*task, "sql_file_names"))
            for j in range(len(sql_names)):
                put((name, "sql_file_names", j), (*task, "sql_file_names", j), prefer_key=False)
        param = ("Details", "param_file_name") if isinstance(step, GlueStep) else ("param_file_name",)
        node: Any = raw_tasks[i] if i < len(raw_tasks) else None
        for part in param:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            put((name, *param), (*task, *param))
    return out


def _sorted(errors: list[ConfigError], source: Path) -> list[ConfigError]:
    """The source file's errors by line, then those located in other files (includes)."""
    return sorted(errors, key=lambda e: (Path(e.file) != source, str(e.file), e.line or 0))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {_short(value)}"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- pydantic errors -> ConfigErrors ----------------------------------------------------------
def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional; keep a union of tagged models as it is."""
    while True:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _tags(tp: Any) -> dict[str, Any]:
    """For a union of `Annotated[Model, Tag(...)]` members: tag -> model."""
    out = {}
    if get_origin(tp) in (Union, types.UnionType):
        for member in get_args(tp):
            if get_origin(member) is typing.Annotated:
                args = get_args(member)
                for meta in args[1:]:
                    if isinstance(meta, Tag):
                        out[meta.tag] = args[0]
    return out


def _field_type(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info.annotation
    return None


@dataclass
class _Located:
    path: KeyPath  # clean path (no discriminator tags, no '[key]')
    about_key: bool  # the error is about a mapping key itself
    parent: Any  # the type holding the last element (a model class, dict, list...)
    target: Any  # the type of the last element
    step_class: type[StepBase] | None


def _locate(loc: tuple[Any, ...]) -> _Located:
    tp: Any = PipelineConfig
    parent: Any = None
    path: list[Any] = []
    about_key = False
    step_class = None
    for part in loc:
        tp = _unwrap(tp)
        tags = _tags(tp)
        if isinstance(part, str) and part in tags:
            tp = tags[part]
            step_class = tp if isinstance(tp, type) and issubclass(tp, StepBase) else step_class
            continue
        if part == "[key]":
            about_key = True
            continue
        path.append(part)
        parent = tp
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = _field_type(tp, str(part))
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            tp = None
    return _Located(tuple(path), about_key, _unwrap(parent) if parent is not None else None, _unwrap(tp), step_class)


def _literal_values(tp: Any) -> list[str]:
    return [str(v) for v in get_args(tp)] if get_origin(tp) is Literal else []


def _field_names(model: Any) -> list[str]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


_SECONDS_HINT = "write seconds as a number, arithmetic like 60 * 5, or timedelta(hours=1, minutes=30)"
_HINTS = {
    "poke_interval": _SECONDS_HINT,
    "timeout": _SECONDS_HINT,
    "execution_delta": "write timedelta(hours=..., minutes=..., days=...) or a number of seconds",
    "start_date": "write a date like 2020-08-04",
}


def _step_kind_message(item: Any) -> str:
    prefixes = [p for p, _ in NAME_PREFIXES]
    if not isinstance(item, dict):
        return f"each task must be a mapping (name: ..., type: ...), got {_kind(item)}"
    name = item.get("name")
    if name is None or not str(name).strip():
        return (
            "the task has no name; its name tells its kind: " + ", ".join(prefixes) + " (or type: ExternalTaskSensor)"
        )
    name = str(name)
    # Compare the name's start with each prefix: a misspelt prefix gets a suggestion.
    best = max(prefixes, key=lambda p: difflib.SequenceMatcher(None, name[: len(p)].lower(), p).ratio())
    ratio = difflib.SequenceMatcher(None, name[: len(best)].lower(), best).ratio()
    hint = f"; did you mean a name starting with {best!r}?" if ratio >= 0.75 else ""
    type_ = item.get("type")
    type_hint = ""
    if isinstance(type_, str) and type_.strip() and type_.strip() != "ExternalTaskSensor":
        if difflib.SequenceMatcher(None, type_.strip().lower(), "externaltasksensor").ratio() >= 0.75:
            type_hint = "; did you mean type: ExternalTaskSensor?"
    return (
        f"cannot tell the step kind of {name!r}: a step name must start with one of "
        + ", ".join(prefixes)
        + ", or the step must have type: ExternalTaskSensor"
        + (type_hint or hint)
    )


def _message(err: dict[str, Any], located: _Located, raw_item: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    last = located.path[-1] if located.path else ""
    if kind == "unknown_step_kind":
        return _step_kind_message(raw_item)
    if kind == "extra_forbidden":
        allowed = _field_names(located.parent)
        key = str(last)
        suggestion = did_you_mean(key, allowed)
        where = ""
        if located.step_class is not None and len(located.path) == 3:
            where = f" for a {located.step_class.label} step"
        if suggestion:
            return f"unknown key {key!r}{where}{suggestion}"
        return f"unknown key {key!r}{where}; allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        allowed = _literal_values(located.target)
        more = f"; allowed values: {', '.join(allowed)}" if allowed else ""
        return f"missing required key {str(last)!r}{more}"
    if kind in ("literal_error", "enum"):
        allowed = [] if located.about_key else _literal_values(located.target)
        if not allowed:
            expected = str(ctx.get("expected", ""))
            allowed = [part.strip(" '") for part in expected.replace(" or ", ", ").split(",") if part.strip()]
        what = "key" if located.about_key else "value"
        text = str(value) if value is not None else ""
        return f"{what} {_short(value)} is not allowed{did_you_mean(text, allowed)} (allowed: {', '.join(allowed)})"
    if kind == "value_error":
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        hint = _HINTS.get(str(last))
        return f"{message}; {hint}" if hint and hint not in message else message
    if kind in ("string_too_short",):
        return "must not be empty"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} item(s)"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of keys, got {_kind(value)}"
    if kind == "list_type":
        return f"expected a list, got {_kind(value)}"
    if kind in ("string_type",):
        return f"expected text, got {_kind(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_kind(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing"):
        return f"expected a number, got {_kind(value)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
        for key, word in words.items():
            if key in ctx:
                return f"must be {word} {ctx[key]}, got {_short(value)}"
    hint = _HINTS.get(str(last))
    message = f"{err.get('msg', kind)} (got {_short(value)})"
    return f"{message}; {hint}" if hint else message


def schema_errors(exc: ValidationError, doc: YamlDocument, prefix: KeyPath) -> list[ConfigError]:
    """Pydantic errors of the pipeline at `prefix` as ConfigErrors located in the YAML."""
    raw = doc.data
    for part in prefix:
        raw = raw.get(part) if isinstance(raw, dict) else None
    out = []
    for err in exc.errors(include_url=False):
        located = _locate(tuple(err["loc"]))
        raw_item = None
        if err["type"] == "unknown_step_kind" and len(located.path) >= 2:
            tasks = raw.get("tasks") if isinstance(raw, dict) else None
            index = located.path[1]
            if isinstance(tasks, list) and isinstance(index, int) and index < len(tasks):
                raw_item = tasks[index]
        message = _message(err, located, raw_item)
        full = tuple(prefix) + located.path
        if err["type"] == "missing":
            # Point at the mapping that lacks the key.
            mark = doc.positions.find(full[:-1], prefer_key=True)
            error = ConfigError(
                mark.file if mark else doc.file,
                mark.line if mark else 1,
                format_key_path(full, doc.data),
                message,
                root=doc.root,
            )
        else:
            prefer_key = err["type"] == "extra_forbidden" or located.about_key
            error = doc.error_at(full, message, prefer_key=prefer_key)
        out.append(error)
    return out
