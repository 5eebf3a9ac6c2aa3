"""Local stand-ins for what alerts reach: a fake Slack Web API (HTTP on 127.0.0.1, answers
`chat.postMessage` with `{"ok": true}` and records each request) and an SMTP server
(aiosmtpd on 127.0.0.1, records each message), plus a project of three pipelines whose
alert settings differ."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from aiosmtpd.controller import Controller
from dagster import DagsterInstance, instance_for_test

from tests.factory.conftest import build_defs

UI_URL = "http://ui.example.test:3000"
PARTITIONS = iter(f"2024-02-{day:02d}" for day in range(1, 29))  # a fresh partition per run (the flaky marker)

# pipeline id -> its default_args alert keys and slack_channel block
PIPELINES = {
    # Slack and e-mail, e-mail on failure and on retry
    "t_alerts_Daily": """\
      email_prod: "ds-oncall@example.com"
      email_nonprod: "ds-dev@example.com, ds-dev2@example.com"
      email_on_failure: True
      email_on_retry: True
    slack_channel:
      NON-PROD: "#ds-alerts-dev"
      PROD: "ds-alerts"
""",
    # e-mail on failure only, no Slack (as the example configs)
    "t_failmail_Daily": """\
      email_prod: "fail-prod@example.com"
      email_nonprod: "fail-dev@example.com"
      email_on_failure: True
      email_on_retry: False
    slack_channel:
      NON-PROD: ""
      PROD: ""
""",
    # nothing: empty channels, e-mail off
    "t_quiet_Daily": """\
      email_nonprod: "quiet@example.com"
      email_on_failure: False
      email_on_retry: False
    slack_channel:
      NON-PROD: ""
""",
}

CONFIG = """\
dags:
  sagemaker:
    domain: t
    sub_domain: {sub_domain}
    action: Daily
    default_args:
      owner: "Alerts Team"
      start_date: "2024-1-1"
      retries: 1
      retry_delay: 0.001
{alerts}    schedule_interval: "0 6 * * *"
    tasks:
      - name: python_script_echo
        script_loc: common
        script_name: echo
      - name: python_script_flaky
        script_loc: common
        script_name: fail_first_time
        templates_dict:
          marker: "{root}/flaky-{sub_domain}-{{{{ ds }}}}.marker"
      - name: python_script_always_fail
        script_loc: common
        script_name: always_fail
      - name: python_script_wait
        script_loc: common
        script_name: fail_then_wait
        templates_dict:
          marker: "{root}/wait-{sub_domain}-{{{{ ds }}}}.marker"
"""

SCRIPTS = {
    "echo.py": "print('echo')\n",
    "always_fail.py": "import sys\nsys.exit('this step always fails\\nsecond line of the error')\n",
    "fail_first_time.py": (
        "import os, sys\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "if not os.path.exists(args['--marker']):\n"
        "    open(args['--marker'], 'w').close()\n"
        "    sys.exit('first attempt fails on purpose')\n"
        "print('second attempt succeeds')\n"
    ),
    # fails its first attempt; the second waits (up to 60 s) for '<marker>.go' from the test
    "fail_then_wait.py": (
        "import os, sys, time\n"
        "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
        "marker = args['--marker']\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    sys.exit('first attempt fails, the second waits')\n"
        "deadline = time.time() + 60\n"
        "while not os.path.exists(marker + '.go') and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('second attempt done')\n"
    ),
}


def write_alerts_project(root: Path) -> Path:
    project = root / "p"
    (project / "model_configs").mkdir(parents=True)
    (project / "Py_Models").mkdir(parents=True)
    for name, text in SCRIPTS.items():
        (project / "Py_Models" / name).write_text(text)
    for pid, alerts in PIPELINES.items():
        sub_domain = pid.split("_")[1]
        (project / "model_configs" / f"{sub_domain}.yml").write_text(
            CONFIG.format(sub_domain=sub_domain, alerts=alerts, root=root)
        )
    return project


@pytest.fixture(scope="session")
def alerts_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The project's folder and its code location (LOCAL), built once."""
    root = tmp_path_factory.mktemp("alerts")
    project = write_alerts_project(root)
    return project, build_defs(project, root / "home")


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def partition() -> str:
    return next(PARTITIONS)


# --- fake Slack Web API -------------------------------------------------------------------


@dataclass
class FakeSlack:
    url: str  # the Web API base URL, as ML_PIPELINES_SLACK_API_URL
    requests: list[dict] = field(default_factory=list)  # {"path", "auth", "body"}
    answer: dict = field(default_factory=lambda: {"ok": True})

    @property
    def messages(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat.postMessage")]


def _slack_handler(fake: FakeSlack):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if "json" in (self.headers.get("Content-Type") or ""):
                body = json.loads(raw or "{}")
            else:
                body = dict(parse_qsl(raw))
            fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            answer = json.dumps({**fake.answer, "channel": body.get("channel"), "ts": "1.0"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            """No request log on stderr."""

    return Handler


@pytest.fixture
def fake_slack():
    fake = FakeSlack(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _slack_handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


# --- SMTP server --------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (mail from, rcpt tos)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m, (_, rcpt) in zip(self.messages, self.envelopes, strict=True) if address in rcpt]


@pytest.fixture
def smtp_server():
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


def alert_environ(slack: FakeSlack | None = None, smtp: SmtpSink | None = None, **extra: str) -> dict[str, str]:
    """ML_PIPELINES_* alert settings pointing at the fakes."""
    environ = {"ML_PIPELINES_UI_URL": UI_URL}
    if slack is not None:
        environ |= {"ML_PIPELINES_SLACK_TOKEN": "xoxb-test-token", "ML_PIPELINES_SLACK_API_URL": slack.url}
    if smtp is not None:
        environ |= {
            "ML_PIPELINES_SMTP_HOST": "127.0.0.1",
            "ML_PIPELINES_SMTP_PORT": str(smtp.port),
            "ML_PIPELINES_SMTP_SECURITY": "none",
            "ML_PIPELINES_SMTP_FROM": "ml-pipelines@example.com",
        }
    return environ | extra


def other_instance(instance: DagsterInstance) -> DagsterInstance:
    """The same instance opened again (for a thread that reads while a run writes)."""
    return DagsterInstance.from_ref(instance.get_ref())
