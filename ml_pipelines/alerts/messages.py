"""What an alert says: one `Alert` per run success, step retry or run failure of a pipeline,
and its text for Slack (mrkdwn), e-mail and the log. Pure Python: no Dagster, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ERROR_LINES = 6  # the error's first lines in a message
ERROR_CHARS = 900  # and at most this many characters of them
MAX_STEPS_LISTED = 12  # a success names at most this many steps


class AlertKind(str, Enum):
    SUCCESS = "success"
    RETRY = "retry"
    FAILURE = "failure"


@dataclass(frozen=True)
class StepError:
    """A step's failed attempt: the step name and the first lines of its error."""

    step: str
    error: str


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    env: str  # LOCAL, DEV, BETA or PROD
    pipeline_id: str
    run_id: str  # "" for an alert of no run (an external wait that timed out)
    run_url: str  # the run's page, or the page that shows what the alert is about
    partition: str | None  # None: the run has no partition
    steps: tuple[str, ...] = ()  # success: the pipeline's steps in the run; else the failed ones
    errors: tuple[StepError, ...] = ()  # retry: the attempt's error; failure: each failed step's
    attempt: int | None = None  # retry: the attempt that failed (1 = the first)
    max_attempts: int | None = None  # retry: 1 + the pipeline's retries
    retry_in_seconds: float | None = None  # retry: the delay before the next attempt

    @property
    def partition_text(self) -> str:
        return self.partition or "(not partitioned)"

    @property
    def step_text(self) -> str:
        if not self.steps:
            return "(none)"
        listed = list(self.steps[:MAX_STEPS_LISTED])
        more = len(self.steps) - len(listed)
        return ", ".join(listed) + (f" and {more} more" if more > 0 else "")

    @property
    def headline(self) -> str:
        """One line: what happened, to which pipeline and partition."""
        where = f"pipeline {self.pipeline_id}, partition {self.partition_text}"
        if self.kind is AlertKind.SUCCESS:
            return f"SUCCEEDED: {where}"
        if self.kind is AlertKind.RETRY:
            return f"RETRY: {where}, step {self.step_text} ({self.attempt_text()})"
        return f"FAILED: {where}, step {self.step_text}"

    def attempt_text(self) -> str:
        text = f"attempt {self.attempt}"
        if self.max_attempts:
            text += f" of {self.max_attempts}"
        text += " failed"
        if self.retry_in_seconds is not None:
            text += f", next attempt in {_duration(self.retry_in_seconds)}"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def first_lines(text: str, lines: int = ERROR_LINES, chars: int = ERROR_CHARS) -> str:
    """The first `lines` non-blank lines of `text`, at most `chars` characters, marked when cut."""
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    out = "\n".join(kept[:lines])
    cut = len(kept) > lines
    if len(out) > chars:
        out, cut = out[: chars - 1].rstrip(), True
    return out + ("\n..." if cut else "")


def email_subject(alert: Alert) -> str:
    return f"[ml-pipelines {alert.env}] {alert.headline}"


def plain_text(alert: Alert) -> str:
    """The e-mail body, also what the log shows."""
    facts = {
        "Pipeline": alert.pipeline_id,
        "Partition": alert.partition_text,
        "Steps" if alert.kind is AlertKind.SUCCESS else "Step": alert.step_text,
        "Environment": alert.env,
        "Run" if alert.run_id else "Details": alert.run_url,  # no run: a wait that timed out (ml_pipelines/waits)
    }
    lines = [alert.headline, "", *(f"{name + ':':<13}{value}" for name, value in facts.items())]
    for error in alert.errors:
        lines += ["", f"Error of step {error.step} (first lines):", *("  " + line for line in error.error.splitlines())]
    return "\n".join(lines) + "\n"


_ICONS = {AlertKind.SUCCESS: ":white_check_mark:", AlertKind.RETRY: ":warning:", AlertKind.FAILURE: ":x:"}


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its API asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(alert: Alert) -> str:
    """The Slack message (mrkdwn): the headline, the facts, each error in a code block, the run link."""
    what = {AlertKind.SUCCESS: "succeeded", AlertKind.RETRY: "step retried", AlertKind.FAILURE: "failed"}[alert.kind]
    lines = [
        f"{_ICONS[alert.kind]} *{alert.pipeline_id}* {what} ({alert.env})",
        f"partition `{alert.partition_text}` · "
        f"{'steps' if alert.kind is AlertKind.SUCCESS else 'step'} `{_slack_escape(alert.step_text)}`"
        + (f" · {alert.attempt_text()}" if alert.kind is AlertKind.RETRY else ""),
    ]
    for error in alert.errors:
        body = _slack_escape(error.error).replace("```", "'''")
        lines.append(f"`{error.step}`:\n```{body}```")
    lines.append(f"<{alert.run_url}|{f'Run {alert.run_id[:8]}' if alert.run_id else 'Details'}>")
    return "\n".join(lines)
