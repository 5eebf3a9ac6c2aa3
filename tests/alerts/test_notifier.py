"""The notifier on its own: settings from ML_PIPELINES_* variables, what each implementation
does with a route, SMTP over STARTTLS and implicit TLS with a login, failures as warnings."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ml_pipelines.alerts.messages import Alert, AlertKind, StepError, first_lines, slack_text
from ml_pipelines.alerts.notifier import (
    EmailNotifier,
    LogNotifier,
    Notifier,
    Notifiers,
    Route,
    SlackNotifier,
    alert_settings_from_env,
    build_notifier,
    notifier_for,
)
from ml_pipelines.alerts.sensors import FINISHED, AlertCursor, PipelineAlerts, error_text
from tests.alerts.conftest import SmtpSink, alert_environ, free_port

ALERT = Alert(
    kind=AlertKind.FAILURE,
    env="DEV",
    pipeline_id="max_ds_Forecast",
    run_id="0123456789abcdef",
    run_url="http://ui.test/runs/0123456789abcdef",
    partition="2024-03-01",
    steps=("write_to_snowflake",),
    errors=(StepError("write_to_snowflake", "SQL compilation error:\nobject 'T' does not exist"),),
)
LOG = logging.getLogger("tests.alerts.notifier")


# --- settings -----------------------------------------------------------------------------


def test_without_settings_every_alert_goes_to_the_log():
    settings = alert_settings_from_env({})
    assert settings.slack is None and settings.smtp is None
    assert settings.ui_url == "http://127.0.0.1:3000"
    notifier = build_notifier(None, environ={})
    assert isinstance(notifier, LogNotifier) and notifier.covers == {"slack", "email"}


def test_a_configured_channel_is_used_and_the_other_is_logged():
    notifier = notifier_for(alert_settings_from_env({"ML_PIPELINES_SLACK_TOKEN": "xoxb-1"}))
    assert isinstance(notifier, Notifiers)
    slack, log = notifier.parts
    assert isinstance(slack, SlackNotifier) and slack.settings.api_url == "https://slack.com/api/"
    assert isinstance(log, LogNotifier) and log.covers == {"email"}
    both = notifier_for(alert_settings_from_env({"ML_PIPELINES_SLACK_TOKEN": "x", "ML_PIPELINES_SMTP_HOST": "mail"}))
    assert [type(p) for p in both.parts] == [SlackNotifier, EmailNotifier]


def test_smtp_settings_and_their_defaults():
    smtp = alert_settings_from_env({"ML_PIPELINES_SMTP_HOST": "mail.example.com"}).smtp
    assert (smtp.port, smtp.security, smtp.user) == (587, "starttls", None)
    assert smtp.sender.startswith("ml-pipelines@")
    smtp = alert_settings_from_env(
        {
            "ML_PIPELINES_SMTP_HOST": "mail.example.com",
            "ML_PIPELINES_SMTP_SECURITY": "SSL",
            "ML_PIPELINES_SMTP_USER": "bot@example.com",
            "ML_PIPELINES_SMTP_PASSWORD": "s3cret",
        }
    ).smtp
    assert (smtp.port, smtp.security, smtp.sender) == (465, "ssl", "bot@example.com")
    assert "s3cret" not in repr(smtp)
    none = alert_settings_from_env(
        {"ML_PIPELINES_SMTP_HOST": "relay", "ML_PIPELINES_SMTP_SECURITY": "none", "ML_PIPELINES_SMTP_PORT": "2525"}
    ).smtp
    assert (none.port, none.security) == (2525, "none")


def test_the_slack_api_url_and_ui_url():
    settings = alert_settings_from_env(
        {
            "ML_PIPELINES_SLACK_TOKEN": "xoxb-secret",
            "ML_PIPELINES_SLACK_API_URL": "http://127.0.0.1:9/api",
            "ML_PIPELINES_UI_URL": "https://dagster.example.com/",
        }
    )
    assert settings.slack.api_url == "http://127.0.0.1:9/api/"  # slack_sdk appends the method name
    assert "xoxb-secret" not in repr(settings)
    assert settings.ui_url == "https://dagster.example.com"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ML_PIPELINES_SMTP_HOST": "m", "ML_PIPELINES_SMTP_SECURITY": "tls"}, "ML_PIPELINES_SMTP_SECURITY='tls'"),
        ({"ML_PIPELINES_SMTP_HOST": "m", "ML_PIPELINES_SMTP_PORT": "smtp"}, "ML_PIPELINES_SMTP_PORT='smtp'"),
        ({"ML_PIPELINES_SMTP_HOST": "m", "ML_PIPELINES_SMTP_PORT": "70000"}, "ML_PIPELINES_SMTP_PORT='70000'"),
        ({"ML_PIPELINES_SMTP_HOST": "m", "ML_PIPELINES_SMTP_PASSWORD": "p"}, "ML_PIPELINES_SMTP_USER is not"),
        ({"ML_PIPELINES_SLACK_API_URL": "slack.com/api"}, "ML_PIPELINES_SLACK_API_URL"),
        ({"ML_PIPELINES_UI_URL": "localhost:3000"}, "ML_PIPELINES_UI_URL"),
    ],
)
def test_a_malformed_setting_is_an_error_naming_it(environ, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        alert_settings_from_env(environ)


# --- routes -------------------------------------------------------------------------------


def test_email_goes_only_where_email_on_failure_or_retry_says():
    pipeline = PipelineAlerts("p", "#c", ("a@x.com",), True, False, 2, ("s",))
    assert pipeline.route(AlertKind.FAILURE) == Route("#c", ("a@x.com",))
    assert pipeline.route(AlertKind.RETRY) == Route("#c", ())
    assert pipeline.route(AlertKind.SUCCESS) == Route("#c", ())  # never an e-mail on success
    flipped = replace(pipeline, email_on_failure=False, email_on_retry=True, slack_channel=None)
    assert flipped.route(AlertKind.FAILURE) == Route(None, ())
    assert flipped.route(AlertKind.RETRY) == Route(None, ("a@x.com",))


def test_an_empty_route_sends_nothing(fake_slack, smtp_server, caplog):
    notifier = notifier_for(alert_settings_from_env(alert_environ(fake_slack, smtp_server)))
    with caplog.at_level(logging.INFO):
        assert notifier.notify(ALERT, Route(None, ()), LOG) == []
        assert notifier_for(alert_settings_from_env({})).notify(ALERT, Route("", ()), LOG) == []
    assert fake_slack.requests == [] and smtp_server.messages == [] and not caplog.records


# --- delivery -----------------------------------------------------------------------------


def test_slack_posts_the_message(fake_slack):
    notifier = notifier_for(alert_settings_from_env(alert_environ(fake_slack)))
    (delivery,) = [d for d in notifier.notify(ALERT, Route("#ds"), LOG) if d.channel == "slack"]
    assert delivery.delivered
    (request,) = fake_slack.requests
    assert request["path"] == "/api/chat.postMessage"
    assert request["body"]["channel"] == "#ds" and request["body"]["text"] == slack_text(ALERT)


def test_a_slack_api_error_is_a_warning(fake_slack, caplog):
    fake_slack.answer = {"ok": False, "error": "channel_not_found"}
    notifier = notifier_for(alert_settings_from_env(alert_environ(fake_slack)))
    with caplog.at_level(logging.WARNING):
        deliveries = notifier.notify(ALERT, Route("#gone"), LOG)
    assert [(d.channel, d.delivered) for d in deliveries] == [("slack", False)]
    (warning,) = caplog.records
    assert "channel_not_found" in warning.getMessage() and "FAILED: pipeline max_ds_Forecast" in warning.getMessage()


def test_a_broken_notifier_does_not_stop_the_others(fake_slack, caplog):
    class Broken(Notifier):
        summary = "broken"

        def notify(self, alert, route, log):
            raise RuntimeError("a bug")

    notifier = Notifiers([Broken(), SlackNotifier(alert_settings_from_env(alert_environ(fake_slack)).slack)])
    with caplog.at_level(logging.WARNING):
        deliveries = notifier.notify(ALERT, Route("#ds"), LOG)
    assert [d.delivered for d in deliveries] == [False, True]
    assert "RuntimeError: a bug" in caplog.records[0].getMessage()


def test_the_log_notifier_prints_the_alert(caplog):
    with caplog.at_level(logging.INFO):
        (delivery,) = LogNotifier().notify(ALERT, Route("#ds", ("a@x.com",)), LOG)
    assert delivery.channel == "log"
    text = caplog.records[0].getMessage()
    assert "instead of Slack #ds (ML_PIPELINES_SLACK_TOKEN is not set)" in text
    assert "e-mail to a@x.com (ML_PIPELINES_SMTP_HOST is not set)" in text
    for part in ("max_ds_Forecast", "2024-03-01", "write_to_snowflake", "object 'T' does not exist", ALERT.run_url):
        assert part in text


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1, its key, and a server context; the cert is the client's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return cert_file, server


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls_with_a_login(tmp_path, monkeypatch, security):
    cert_file, server_context = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client trusts the test's certificate
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    sink = SmtpSink(port=free_port())
    tls = {"tls_context": server_context, "require_starttls": True} if security == "starttls" else {}
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        ssl_context=server_context if security == "ssl" else None,
        authenticator=authenticator,
        # aiosmtpd counts only STARTTLS as TLS for AUTH; over implicit TLS the link is encrypted anyway
        auth_require_tls=security == "starttls",
        server_hostname="127.0.0.1",
        **tls,
    )
    if security == "ssl":  # the controller's own readiness probe must trust the certificate too
        client = ssl.create_default_context(cafile=str(cert_file))
        controller._trigger_server = _tls_probe(controller, client)  # noqa: SLF001
    controller.start()
    try:
        environ = {
            "ML_PIPELINES_SMTP_HOST": "127.0.0.1",
            "ML_PIPELINES_SMTP_PORT": str(sink.port),
            "ML_PIPELINES_SMTP_SECURITY": security,
            "ML_PIPELINES_SMTP_USER": "bot@example.com",
            "ML_PIPELINES_SMTP_PASSWORD": "s3cret",
        }
        notifier = notifier_for(alert_settings_from_env(environ))
        deliveries = [d for d in notifier.notify(ALERT, Route(None, ("oncall@example.com",)), LOG)]
    finally:
        controller.stop()
    assert [(d.channel, d.delivered) for d in deliveries] == [("email", True)]
    assert logins == [(b"bot@example.com", b"s3cret")]
    (mail,) = sink.messages
    assert mail["From"] == "bot@example.com" and mail["To"] == "oncall@example.com"
    assert (
        mail["Subject"]
        == "[ml-pipelines DEV] FAILED: pipeline max_ds_Forecast, partition 2024-03-01, step write_to_snowflake"
    )


def _tls_probe(controller, client_context):
    """aiosmtpd's start() probes its port; over implicit TLS the probe needs a trusting client."""
    import socket

    def trigger():
        with socket.create_connection((controller.hostname, controller.port), 1.0) as raw:
            with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.recv(1024)

    return trigger


def test_an_untrusted_certificate_is_a_warning(tmp_path, caplog):
    _, server_context = _self_signed(tmp_path)
    sink = SmtpSink(port=free_port())
    controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, tls_context=server_context, require_starttls=True
    )
    controller.start()
    try:
        notifier = notifier_for(
            alert_settings_from_env({"ML_PIPELINES_SMTP_HOST": "127.0.0.1", "ML_PIPELINES_SMTP_PORT": str(sink.port)})
        )
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            deliveries = notifier.notify(ALERT, Route(None, ("oncall@example.com",)), LOG)
    finally:
        controller.stop()
    assert [(d.channel, d.delivered) for d in deliveries] == [("email", False)]
    (warning,) = [r for r in caplog.records if r.name == LOG.name]
    assert "CERTIFICATE_VERIFY_FAILED" in warning.getMessage()
    assert sink.messages == []


# --- text ---------------------------------------------------------------------------------


def test_first_lines_cuts_long_errors():
    text = "\n".join(f"line {i}" for i in range(20))
    assert first_lines(text, lines=3) == "line 0\nline 1\nline 2\n..."
    assert first_lines("x" * 2000, chars=10).endswith("...") and len(first_lines("x" * 2000, chars=10)) < 20
    assert first_lines("  \n\nonly\n") == "only"


def test_slack_text_escapes_the_error():
    alert = replace(ALERT, errors=(StepError("s", "a < b && c > d ```"),))
    text = slack_text(alert)
    assert "a &lt; b &amp;&amp; c &gt; d '''" in text
    assert text.endswith("<http://ui.test/runs/0123456789abcdef|Run 01234567>")


def test_error_text_unwraps_dagster_wrappers():
    from dagster._utils.error import SerializableErrorInfo

    failure = SerializableErrorInfo("dagster._core.definitions.events.Failure: step x failed: boom\n", [], "Failure")
    wrapped = SerializableErrorInfo(
        "dagster._core.execution.plan.utils.RetryRequestedFromPolicy\n", [], "RetryRequestedFromPolicy", cause=failure
    )
    assert error_text(wrapped) == "step x failed: boom"
    other = SerializableErrorInfo("builtins.KeyError: 'k'\n", [], "KeyError")
    assert error_text(other) == "KeyError: 'k'"
    assert error_text(None, "fallback message") == "fallback message"


def test_a_cursor_the_sensor_did_not_write_starts_afresh():
    assert AlertCursor.from_json(None) is None
    assert AlertCursor.from_json("not json") is None
    assert AlertCursor.from_json('{"after": {"RUN_SUCCESS": 1}}') is None
    cursor = AlertCursor({t.value: n for n, t in enumerate(FINISHED)}, {"run": 7})
    assert AlertCursor.from_json(cursor.to_json()) == cursor
