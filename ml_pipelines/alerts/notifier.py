"""The notifier resource: the interface, its Slack, SMTP and log implementations, and the
settings they take from ML_PIPELINES_* environment variables.

`build_notifier(settings)` is the one binding (`environment.build_resources` calls it):
Slack when ML_PIPELINES_SLACK_TOKEN is set, e-mail when ML_PIPELINES_SMTP_HOST is set, and for
each channel whose settings are absent the LOG notifier, which prints the alert to the log
instead. A notifier never raises: an alert that cannot be delivered is a warning in the log.
Which pipeline alerts go where (channels, recipients per environment) is decided by the
caller (`alerts.sensors`) and handed over as a `Route`.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cache
from typing import TYPE_CHECKING, Any

from ml_pipelines.alerts.messages import Alert, email_subject, plain_text, slack_text

if TYPE_CHECKING:
    from ml_pipelines.environment import Settings

log = logging.getLogger("ml_pipelines.alerts")

DEFAULT_UI_URL = "http://127.0.0.1:3000"
DEFAULT_INTERVAL_SECONDS = 30  # a retry or a finished run is alerted within about this long
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
SMTP_SECURITY_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
DEFAULT_SMTP_SECURITY = "starttls"
TIMEOUT_SECONDS = 10  # per Slack request or SMTP session: a dead server must not stall the sensor


@dataclass(frozen=True)
class Route:
    """Where one alert of one pipeline goes: its Slack channel (None: no Slack) and e-mail
    recipients (empty: no e-mail), already chosen for the environment and the alert kind."""

    slack_channel: str | None = None
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """What became of an alert on one channel."""

    channel: str  # slack, email or log
    target: str
    delivered: bool
    detail: str = ""


class Notifier(ABC):
    """Sends an alert along its route. Never raises: a failed delivery is logged as a warning
    in `log` and returned with `delivered=False`."""

    @abstractmethod
    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]: ...

    @property
    @abstractmethod
    def summary(self) -> str:
        """Where this notifier sends, for the sensor's description (no secrets)."""


def _failed(log: logging.Logger, channel: str, target: str, alert: Alert, exc: BaseException) -> Delivery:
    detail = f"{type(exc).__name__}: {exc}".strip()
    log.warning("alert not delivered (%s to %s): %s | the alert: %s", channel, target, detail, alert.headline)
    return Delivery(channel, target, False, detail)


@dataclass(frozen=True)
class SlackSettings:
    token: str = field(repr=False)
    api_url: str = DEFAULT_SLACK_API_URL


class SlackNotifier(Notifier):
    """Posts to the route's channel with dagster-slack's `SlackResource` (a subclass that
    takes the Web API's base URL: ML_PIPELINES_SLACK_API_URL)."""

    def __init__(self, settings: SlackSettings):
        self.settings = settings
        self._client: Any = None

    @property
    def summary(self) -> str:
        return f"Slack ({self.settings.api_url})"

    def client(self):
        if self._client is None:
            self._client = slack_resource(self.settings).get_client()
        return self._client

    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]:
        channel = route.slack_channel
        if not channel:
            return []
        try:
            self.client().chat_postMessage(channel=channel, text=slack_text(alert), unfurl_links=False)
        except Exception as exc:  # noqa: BLE001 - whatever goes wrong, the alert is a warning, never a failure
            return [_failed(log, "slack", channel, alert, exc)]
        return [Delivery("slack", channel, True)]


@cache
def _slack_resource_class() -> type:
    """dagster-slack's resource with a base URL and a timeout (its own has only `token`),
    made on first use: importing dagster_slack costs every code-location load ~0.2 s."""
    from dagster_slack import SlackResource
    from slack_sdk import WebClient

    class AlertSlackResource(SlackResource):
        base_url: str = DEFAULT_SLACK_API_URL
        timeout_seconds: int = TIMEOUT_SECONDS

        def get_client(self) -> WebClient:
            return WebClient(self.token, base_url=self.base_url, timeout=self.timeout_seconds)

    return AlertSlackResource


def slack_resource(settings: SlackSettings):
    return _slack_resource_class()(token=settings.token, base_url=settings.api_url)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # ssl, starttls or none
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


class EmailNotifier(Notifier):
    """Sends the route's e-mail over SMTP (smtplib): implicit TLS, STARTTLS or plain, with a
    login when a user is set. Certificates are checked against the system's CAs (or
    SSL_CERT_FILE)."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    @property
    def summary(self) -> str:
        s = self.settings
        return f"e-mail via {s.host}:{s.port} ({s.security})"

    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]:
        if not route.emails:
            return []
        target = ", ".join(route.emails)
        message = EmailMessage()
        message["Subject"] = email_subject(alert)
        message["From"] = self.settings.sender
        message["To"] = target
        message.set_content(plain_text(alert))
        try:
            self.send(message)
        except Exception as exc:  # noqa: BLE001 - whatever goes wrong, the alert is a warning, never a failure
            return [_failed(log, "email", target, alert, exc)]
        return [Delivery("email", target, True)]

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if s.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if s.user:
                smtp.login(s.user, s.password or "")
            smtp.send_message(message)


class LogNotifier(Notifier):
    """The LOG notifier: prints the alert to the log for the channels it stands in for
    (`covers`: slack, email) when the route uses them."""

    def __init__(self, covers: frozenset[str] = frozenset({"slack", "email"})):
        self.covers = covers

    @property
    def summary(self) -> str:
        return f"the log (for {' and '.join(sorted(self.covers))}, not configured)"

    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]:
        instead = []
        if "slack" in self.covers and route.slack_channel:
            instead.append(f"Slack {route.slack_channel} (ML_PIPELINES_SLACK_TOKEN is not set)")
        if "email" in self.covers and route.emails:
            instead.append(f"e-mail to {', '.join(route.emails)} (ML_PIPELINES_SMTP_HOST is not set)")
        if not instead:
            return []
        log.info("ALERT, printed here instead of %s:\n%s", " and ".join(instead), plain_text(alert))
        return [Delivery("log", " and ".join(instead), True)]


class Notifiers(Notifier):
    """Several notifiers, each sent every alert."""

    def __init__(self, parts: list[Notifier]):
        self.parts = list(parts)

    @property
    def summary(self) -> str:
        return ", ".join(p.summary for p in self.parts)

    def notify(self, alert: Alert, route: Route, log: logging.Logger) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for part in self.parts:
            try:
                deliveries += part.notify(alert, route, log)
            except Exception as exc:  # noqa: BLE001 - a bug in one channel must not stop the others
                deliveries.append(_failed(log, type(part).__name__, "?", alert, exc))
        return deliveries


@dataclass(frozen=True)
class AlertSettings:
    slack: SlackSettings | None = None  # None: Slack alerts go to the log
    smtp: SmtpSettings | None = None  # None: e-mail alerts go to the log
    ui_url: str = DEFAULT_UI_URL
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS  # the alert sensor's minimum interval between ticks


def _get(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def _smtp_settings(environ: Mapping[str, str]) -> SmtpSettings | None:
    host = _get(environ, "ML_PIPELINES_SMTP_HOST")
    if not host:
        return None
    security = _get(environ, "ML_PIPELINES_SMTP_SECURITY").lower() or DEFAULT_SMTP_SECURITY
    if security not in SMTP_SECURITY_PORTS:
        raise ValueError(f"ML_PIPELINES_SMTP_SECURITY={security!r} must be one of {', '.join(SMTP_SECURITY_PORTS)}")
    port_text = _get(environ, "ML_PIPELINES_SMTP_PORT")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"ML_PIPELINES_SMTP_PORT={port_text!r} must be a port number (1-65535)")
    user = _get(environ, "ML_PIPELINES_SMTP_USER") or None
    password = environ.get("ML_PIPELINES_SMTP_PASSWORD") or None
    if password and not user:
        raise ValueError("ML_PIPELINES_SMTP_PASSWORD is set but ML_PIPELINES_SMTP_USER is not")
    sender = _get(environ, "ML_PIPELINES_SMTP_FROM")
    if not sender:
        sender = user if user and "@" in user else f"ml-pipelines@{socket.gethostname()}"
    return SmtpSettings(
        host=host,
        port=int(port_text) if port_text else SMTP_SECURITY_PORTS[security],
        security=security,
        sender=sender,
        user=user,
        password=password,
    )


def alert_settings_from_env(environ: Mapping[str, str] | None = None) -> AlertSettings:
    """The alert settings from ML_PIPELINES_SLACK_*, ML_PIPELINES_SMTP_*, ML_PIPELINES_UI_URL and
    ML_PIPELINES_ALERT_INTERVAL_SECONDS;
    ValueError naming the variable when one is malformed."""
    environ = os.environ if environ is None else environ
    token = _get(environ, "ML_PIPELINES_SLACK_TOKEN")
    api_url = _get(environ, "ML_PIPELINES_SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"ML_PIPELINES_SLACK_API_URL={api_url!r} must be an http(s) URL")
    ui_url = _get(environ, "ML_PIPELINES_UI_URL") or DEFAULT_UI_URL
    if not ui_url.startswith(("http://", "https://")):
        raise ValueError(f"ML_PIPELINES_UI_URL={ui_url!r} must be an http(s) URL")
    interval = _get(environ, "ML_PIPELINES_ALERT_INTERVAL_SECONDS")
    if interval and not (interval.isdigit() and int(interval) >= 1):
        raise ValueError(f"ML_PIPELINES_ALERT_INTERVAL_SECONDS={interval!r} must be a whole number of at least 1")
    return AlertSettings(
        interval_seconds=int(interval) if interval else DEFAULT_INTERVAL_SECONDS,
        # slack_sdk appends the method name to the base URL as is
        slack=SlackSettings(token, api_url if api_url.endswith("/") else api_url + "/") if token else None,
        smtp=_smtp_settings(environ),
        ui_url=ui_url.rstrip("/"),
    )


def notifier_for(alert_settings: AlertSettings) -> Notifier:
    """Slack and e-mail where their settings are present; the log for the others."""
    parts: list[Notifier] = []
    logged: set[str] = set()
    if alert_settings.slack is not None:
        parts.append(SlackNotifier(alert_settings.slack))
    else:
        logged.add("slack")
    if alert_settings.smtp is not None:
        parts.append(EmailNotifier(alert_settings.smtp))
    else:
        logged.add("email")
    if logged:
        parts.append(LogNotifier(frozenset(logged)))
    return parts[0] if len(parts) == 1 else Notifiers(parts)


def build_notifier(settings: Settings, environ: Mapping[str, str] | None = None) -> Notifier:
    """The notifier resource of the environment `settings` describes, from the process's
    ML_PIPELINES_SLACK_* and ML_PIPELINES_SMTP_* variables (or `environ`). Every environment
    binds the same way: what is configured is used, the rest is printed to the log (the
    recipients per environment come with each alert's Route, see `alerts.sensors`)."""
    return notifier_for(alert_settings_from_env(environ))
