"""The project's own Dagster instance: `<home>/dagster_home` (home = $ML_PIPELINES_HOME, else
`<project>/.ml_pipelines`), the DAGSTER_HOME of `make dev` and `ml-pipelines run`, so a run
launched from the terminal is in the UI's runs list.

Its `dagster.yaml` is the product's (`ml_pipelines/instance/dagster.yaml`: run queue, pools),
written there by `make dev` (through `ml-pipelines dagster-home`) and by `ml-pipelines run`.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from ml_pipelines.environment import Settings

INSTANCE_CONFIG = "dagster.yaml"


def instance_config_text() -> str:
    """The product's instance settings."""
    return resources.files("ml_pipelines").joinpath("instance", INSTANCE_CONFIG).read_text()


def project_dagster_home(settings: Settings) -> Path:
    return settings.home / "dagster_home"


def ensure_dagster_home(path: Path) -> Path:
    """Create the folder if needed and make its dagster.yaml the product's (rewritten only
    when it differs). Returns the absolute path."""
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    config = path / INSTANCE_CONFIG
    text = instance_config_text()
    try:
        current = config.read_text()
    except OSError:
        current = None
    if current != text:
        tmp = config.with_name(f".{INSTANCE_CONFIG}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(config)
    return path


# The commands that run or launch a run on the instance of their process.
_RUNNING_COMMANDS = (("asset", "materialize"), ("job", "execute"), ("job", "launch"), ("launch",))


def warn_if_temporary_instance(argv: list[str] | None = None, environ=None, err=None) -> bool:
    """`dagster asset materialize` (and `dg launch`, `dagster job execute|launch`) without
    DAGSTER_HOME run on a temporary instance that is deleted when they exit: the run never
    shows in the UI. Say so on stderr, with what to do instead. True when it warned."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if environ.get("DAGSTER_HOME") or not argv:
        return False
    program = Path(argv[0]).name
    if program == "__main__.py":  # python -m dagster ...
        program = Path(argv[0]).parent.name
    words = tuple(a for a in argv[1:] if not a.startswith("-"))
    if program not in ("dagster", "dg") or not any(words[: len(c)] == c for c in _RUNNING_COMMANDS):
        return False
    from ml_pipelines.environment import settings_from_env

    try:
        home = project_dagster_home(settings_from_env())
    except ValueError:
        home = Path(".ml_pipelines/dagster_home")
    print(
        "ml-pipelines: warning: DAGSTER_HOME is not set: this run goes to a temporary Dagster instance that is "
        "deleted when the command ends, so it will not appear in the UI. Use `ml-pipelines run PIPELINE_ID "
        f"--date YYYY-MM-DD` (the project's instance), or set DAGSTER_HOME={home}",
        file=err or sys.stderr,
        flush=True,
    )
    return True
