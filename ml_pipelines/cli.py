"""`ml-pipelines`: validate, list, plan and run the project's pipelines; scaffold a model.

    ml-pipelines [--project-dir DIR] [--env LOCAL|DEV|BETA|PROD] validate
    ml-pipelines list
    ml-pipelines plan PIPELINE_ID [--date YYYY-MM-DD]
    ml-pipelines run PIPELINE_ID --date YYYY-MM-DD [--step STEP ...] [--dagster-home DIR]
    ml-pipelines new-model NAME --kind notebook|glue|python
    ml-pipelines dagster-home
    ml-pipelines --env DEV doctor

The project dir is --project-dir, else $ML_PIPELINES_PROJECT_DIR, else the current dir.
`validate` checks every environment unless --env names one; `list`, `plan` and `doctor` use --env,
else $ML_PIPELINES_ENV, else LOCAL. The rest of the settings (e.g. LOCAL's storage root
under $ML_PIPELINES_HOME) are a run's own (`environment.settings_from_env`), so `plan`
prints what a run uses. The global options may also be given after the command.

A user's mistake is printed as `file:line: key.path: message` lines, exit 1. No command
prints a traceback: a bug is reported as one `internal error` line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import date
from typing import TYPE_CHECKING, Sequence, TextIO

from ml_pipelines.config.schema import ENVIRONMENTS
from ml_pipelines.config.waits import airflow_url_set, wait_warnings
from ml_pipelines.environment import Settings, settings_from_env

if TYPE_CHECKING:
    from ml_pipelines.config.errors import ConfigError
    from ml_pipelines.config.loader import Project
    from ml_pipelines.config.session import LoadSession

ENV_VAR = "ML_PIPELINES_ENV"
EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    """A bad command line value: one line, exit 2."""


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--project-dir",
        default=default,
        metavar="DIR",
        help="project folder (default: $ML_PIPELINES_PROJECT_DIR, else the current dir)",
    )
    parser.add_argument(
        "--env",
        default=default,
        type=str.upper,
        choices=ENVIRONMENTS,
        help=f"environment (default: ${ENV_VAR}, else LOCAL)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-pipelines", description="Validate, list, plan and run the pipelines of the model configs."
    )
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    validate = sub.add_parser("validate", help="check every config; one line per error, exit 1 if any")
    _add_globals(validate, suppress=True)
    listing = sub.add_parser("list", help="the pipelines with their schedules and steps")
    _add_globals(listing, suppress=True)
    plan = sub.add_parser("plan", help="JSON of one pipeline resolved for the environment and a date")
    _add_globals(plan, suppress=True)
    plan.add_argument("pipeline_id", metavar="PIPELINE_ID")
    plan.add_argument("--date", metavar="YYYY-MM-DD", help="logical date (default: today, UTC)")
    doctor = sub.add_parser(
        "doctor", help="check the settings, AWS resources and Snowflake a run needs; exit 1 if any fails"
    )
    _add_globals(doctor, suppress=True)
    run = sub.add_parser(
        "run",
        help="run a pipeline for a date on the project's Dagster instance (in the UI); exit 1 if it fails",
    )
    _add_globals(run, suppress=True)
    run.add_argument("pipeline_id", metavar="PIPELINE_ID")
    run.add_argument("--date", metavar="YYYY-MM-DD", help="the partition: its logical date (or a full partition key)")
    run.add_argument("--step", action="append", default=[], metavar="STEP", help="run only this step (repeat for more)")
    run.add_argument(
        "--dagster-home",
        metavar="DIR",
        help="Dagster instance folder (default: the project's, as `make dev`: <home>/dagster_home)",
    )
    new_model = sub.add_parser(
        "new-model", help="scaffold a model folder and its config that validate and run in LOCAL at once"
    )
    _add_globals(new_model, suppress=True)
    new_model.add_argument("name", metavar="NAME", help="model name: letters, digits and _ (e.g. Churn_Model)")
    new_model.add_argument("--kind", required=True, choices=("notebook", "glue", "python"))
    home = sub.add_parser(
        "dagster-home", help="create the project's Dagster instance folder if needed and print its path"
    )
    _add_globals(home, suppress=True)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """The settings a run would use, with --project-dir and --env applied."""
    try:
        settings = settings_from_env(args.project_dir, args.env)
    except ValueError as exc:  # a bad ML_PIPELINES_ENV
        raise _Usage(str(exc)) from None
    if not settings.project_dir.is_dir():
        raise _Usage(f"project dir {settings.project_dir} does not exist")
    return settings


def _load(settings: Settings, env: str | None = None, session: LoadSession | None = None) -> Project:
    from ml_pipelines.config.loader import load_project

    return load_project(settings.project_dir, env=env or settings.env, session=session)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_ENV_SLOT = "\0"  # where an error's text names the environment it was found in


def validate_environments(settings: Settings, envs: Sequence[str]) -> tuple[list[tuple[str, tuple[str, ...]]], dict]:
    """Load the project once per environment (one shared session: the files are read once).

    Returns each distinct error (as text) with the environments it occurs in, in file and
    line order, and the projects by environment. Errors that differ only by the name of
    their environment ("no PROD section", "not defined for environment DEV") are one error,
    its text naming them all ("DEV/PROD")."""
    from ml_pipelines.config.session import LoadSession

    session = LoadSession()
    projects = {env: _load(settings, env, session) for env in envs}
    found: dict[str, tuple[ConfigError, list[str]]] = {}
    for env, project in projects.items():
        for error in project.errors:
            found.setdefault(re.sub(rf"\b{env}\b", _ENV_SLOT, str(error)), (error, []))[1].append(env)
    ordered = sorted(found.items(), key=lambda item: (item[1][0].display_path, item[1][0].line or 0))
    return [(text.replace(_ENV_SLOT, "/".join(where)), tuple(where)) for text, (_, where) in ordered], projects


def cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = _settings(args)
    envs = [args.env] if args.env else list(ENVIRONMENTS)  # only --env narrows; $ML_PIPELINES_ENV does not
    errors, projects = validate_environments(settings, envs)
    for text, where in errors:
        label = f"[{', '.join(where)}] " if len(where) < len(envs) else ""
        print(label + text, file=out)
    valid = set.intersection(*(set(p.pipeline_ids) for p in projects.values()))
    first = next(iter(projects.values()))
    for warning in wait_warnings(first, airflow_url_set()):  # external waits never satisfied as written
        print(str(warning), file=out)
    n_files = len(first.config_files)
    scope = f"env {envs[0]}" if len(envs) == 1 else f"envs {'/'.join(envs)}"
    summary = (
        f"{_plural(len(valid), 'pipeline')} valid{' in every environment' if len(envs) > 1 else ''} "
        f"in {_plural(n_files, 'config file')} "
        f"({scope}, project {first.paths.root})"
    )
    if errors:
        files = {file for project in projects.values() for file in project.broken}
        only_some = sum(1 for _, where in errors if len(where) < len(envs))
        some = f" ({only_some} only in some environments)" if only_some and len(envs) > 1 else ""
        print(f"{_plural(len(errors), 'error')}{some} in {_plural(len(files), 'file')}; " + summary, file=err)
        return EXIT_ERRORS
    print("OK: " + summary, file=err)
    return EXIT_OK


def _print_errors(errors: Sequence[ConfigError], err: TextIO) -> None:
    for error in errors:
        print(str(error), file=err)


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = _load(_settings(args))
    for loaded in project.pipelines:
        config = loaded.config
        schedule = config.schedule_interval or "none"
        print(f"{loaded.pipeline_id}  schedule: {schedule}  ({project.paths.rel(loaded.source)})", file=out)
        width = max((len(step.name) for step in config.tasks), default=0)
        for step in config.tasks:
            after = f"  after: {', '.join(step.upstream_task_name)}" if step.upstream_task_name else ""
            print(f"  {step.name:<{width}}  {step.kind.value:<15}{after}".rstrip(), file=out)
    if not project.pipelines:
        print(f"no valid pipelines in {project.paths.model_configs}", file=err)
    if project.errors:
        _print_errors(project.errors, err)
        print(f"{_plural(len(project.errors), 'config error')} hid some pipelines (env {project.env})", file=err)
        return EXIT_ERRORS
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    logical_date = None
    if args.date:
        try:
            logical_date = date.fromisoformat(args.date)
        except ValueError:
            raise _Usage(f"--date {args.date!r} is not a date; write YYYY-MM-DD") from None
    settings = _settings(args)
    project = _load(settings)
    if args.pipeline_id not in project.pipeline_ids:
        source = project.invalid_pipeline_ids.get(args.pipeline_id)
        if source is not None:
            _print_errors(project.broken.get(source, []), err)
        print(f"ml-pipelines: {project.unknown_pipeline_message(args.pipeline_id)}", file=err)
        return EXIT_ERRORS
    from ml_pipelines.cli_plan import StepPlanError, plan_as_dict

    try:
        plan = plan_as_dict(project, args.pipeline_id, settings.env, logical_date, storage_root=settings.storage_root)
    except StepPlanError as exc:  # the user's data (a template, a parameter file) for this date and env
        print(str(exc.error), file=err)
        return EXIT_ERRORS
    print(json.dumps(plan, indent=2, default=str), file=out)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = _settings(args)
    if settings.env == "LOCAL":
        print("LOCAL runs on this machine and needs no AWS settings; run doctor with --env DEV, BETA or PROD", file=out)
        return EXIT_OK
    from ml_pipelines.aws.doctor import run_checks

    project = _load(settings)
    failed = 0
    for check in run_checks(project, settings.env):
        failed += not check.ok
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}", file=out, flush=True)
    if project.errors:
        print(f"({_plural(len(project.errors), 'config error')}: run `ml-pipelines validate`)", file=out)
    summary = f"{_plural(failed, 'check')} failed" if failed else "every check passed"
    print(f"doctor {settings.env}: {summary}", file=out)
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from ml_pipelines.cli_run import RunCommandError, run_pipeline
    from ml_pipelines.dagster_home import project_dagster_home

    settings = _settings(args)
    project = _load(settings)
    if args.pipeline_id not in project.pipeline_ids:
        source = project.invalid_pipeline_ids.get(args.pipeline_id)
        if source is not None:
            _print_errors(project.broken.get(source, []), err)
        print(f"ml-pipelines: {project.unknown_pipeline_message(args.pipeline_id)}", file=err)
        return EXIT_ERRORS
    home = Path(args.dagster_home) if args.dagster_home else project_dagster_home(settings)
    try:
        return run_pipeline(settings, project, args.pipeline_id, args.date, args.step, home, out, err)
    except RunCommandError as exc:
        print(f"ml-pipelines: {exc}", file=err)
        return EXIT_ERRORS


def cmd_new_model(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ml_pipelines.scaffold import ScaffoldError, scaffold_model

    settings = _settings(args)
    try:
        created = scaffold_model(settings.project_dir, args.name, args.kind)
    except ScaffoldError as exc:
        print(f"ml-pipelines: {exc}", file=err)
        return EXIT_ERRORS
    for path in created.files:
        print(f"created {path.relative_to(settings.project_dir)}", file=out)
    print(
        f"pipeline {created.pipeline_id}: check it with `ml-pipelines validate`, run it with "
        f"`ml-pipelines run {created.pipeline_id} --date {created.example_date}`",
        file=out,
    )
    return EXIT_OK


def cmd_dagster_home(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ml_pipelines.dagster_home import ensure_dagster_home, project_dagster_home

    print(ensure_dagster_home(project_dagster_home(_settings(args))), file=out)
    return EXIT_OK


COMMANDS = {
    "validate": cmd_validate,
    "list": cmd_list,
    "plan": cmd_plan,
    "doctor": cmd_doctor,
    "run": cmd_run,
    "new-model": cmd_new_model,
    "dagster-home": cmd_dagster_home,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args, out, err)
    except _Usage as exc:
        print(f"ml-pipelines: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ml-pipelines: interrupted", file=err)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as a killed pipe does
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error when Python flushes at exit
        return 141
    except Exception as exc:  # never a traceback
        text = " ".join(str(exc).split())[:300]
        print(f"ml-pipelines: internal error: {type(exc).__name__}: {text}", file=err)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
