"""Alerts through a real local HTTP server (webhook) and a real local SMTP server (aiosmtpd), and their
triggers: a held night and a failed run (run-failure sensor over real runs), a missing drop (freshness)."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dagster import (
    AssetCheckEvaluation,
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)

from etl_project.alerts import Alert, AlertsResource, NotifyError, SmtpNotifier, WebhookNotifier
from etl_project.alerts.sensors import missing_drop_alert_sensor, sync_failure_alert_sensor
from etl_project.assets.keys import SNAPSHOT
from etl_project.automation.freshness import CHECK_NAME, build_missing_drop_sensor
from etl_project.generate import generate_drop
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.reports.serve import district_token
from etl_project_tests.automation import registry_home
from etl_project_tests.report_server import free_port
from etl_project_tests.reports_helpers import ASSETS, NIGHT1, NIGHT2, RUN_CONFIG, sync_districts

NIGHT3 = "2026-09-16"

HOOK_TOKEN = "T0PSECRET-hook-token"
SMTP_PASSWORD = "sm7p-pa55word"

__all__ = ["registry_home"]  # the fixture


class Webhook:
    """A real HTTP server on loopback that records every POST (or answers ``status``)."""

    def __init__(self, status: int = 200):
        self.received: list[tuple[str, dict]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, json.loads(body)))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{HOOK_TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    with Webhook() as hook:
        yield hook


class _Inbox:
    def __init__(self):
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = _Inbox()

    def auth(server, session, envelope, mechanism, data):
        ok = data.login == b"alerts" and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=auth, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


ALERT = Alert(
    "held",
    "north",
    NIGHT2,
    "The night's roster would change more of the LMS than the safety limits allow, so nothing was applied.",
    "North Unified",
    {"users deactivate": "12 of 60 (limit 0.1)"},
    "http://127.0.0.1:8765/d/abc/date=2026-09-15/report.html",
)


def test_webhook_posts_one_json_message(webhook):
    WebhookNotifier(webhook.url).send(ALERT)
    [(path, body)] = webhook.received
    assert path == f"/hooks/{HOOK_TOKEN}"
    assert body["event"] == "held" and body["district"] == "north" and body["night"] == NIGHT2
    assert body["report_url"] == ALERT.report_url and "nothing was applied" in body["what"]
    assert "North Unified" in body["text"] and HOOK_TOKEN not in json.dumps(body)


def test_webhook_failure_names_no_secret():
    with Webhook(status=500) as hook, pytest.raises(NotifyError) as err:
        WebhookNotifier(hook.url).send(ALERT)
    assert "HTTP 500" in str(err.value) and HOOK_TOKEN not in str(err.value)
    with pytest.raises(NotifyError) as err:
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/hooks/{HOOK_TOKEN}").send(ALERT)
    assert HOOK_TOKEN not in str(err.value) and HOOK_TOKEN not in repr(WebhookNotifier(hook.url))


def test_email_over_a_real_smtp_server(smtp_server):
    inbox, port = smtp_server
    notifier = SmtpNotifier(
        "127.0.0.1", port, "sync@district.example", ["it@north.example", "ops@example.org"],
        username="alerts", password=SMTP_PASSWORD, starttls=False,
    )  # fmt: skip
    notifier.send(ALERT)
    [raw] = inbox.messages
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_content()
    assert (
        msg["Subject"]
        == "[roster sync] North Unified (north), night 2026-09-15: held: nothing applied to the LMS"
    )
    assert "What happened: The night's roster would change more" in text
    assert f"Report: {ALERT.report_url}" in text and msg["To"] == "it@north.example, ops@example.org"
    assert SMTP_PASSWORD not in raw.decode() and SMTP_PASSWORD not in text

    wrong = SmtpNotifier(
        "127.0.0.1", port, "a@b", ["c@d"], username="alerts", password="nope", starttls=False
    )
    with pytest.raises(NotifyError) as err:
        wrong.send(ALERT)
    assert "refused the login" in str(err.value) and "nope" not in str(err.value)
    # STARTTLS required but the server offers none: a clear error, nothing sent
    with pytest.raises(NotifyError):
        SmtpNotifier("127.0.0.1", port, "a@b", ["c@d"], starttls=True).send(ALERT)
    assert len(inbox.messages) == 1


def _students(drop_path) -> set[str]:
    """Every student's sourcedId and full name in the night's users.csv (none may appear in an alert)."""
    with open(drop_path / "users.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["role"] == "student"]
    return {r["sourcedId"] for r in rows} | {f"{r['givenName']} {r['familyName']}" for r in rows}


def _run_failure_context(instance, result, resources):
    [record] = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)
    return build_run_status_sensor_context(
        sensor_name="sync_failure_alert_sensor",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        resources=resources,
    ).for_run_failure()


def test_held_night_and_failed_run_alert_once_each(tmp_path, webhook, smtp_server):
    inbox, port = smtp_server
    with DagsterInstance.ephemeral() as instance:
        synced = sync_districts(
            tmp_path, instance, {"ridge": "Ridge Valley Schools"},
            thresholds="[districts.{district}.thresholds]\ndeactivate = 0\n",  # any deactivation holds
        )  # fmt: skip
        held = synced.results[("ridge", NIGHT2)]
        assert synced.results[("ridge", NIGHT1)].success and not held.success
        alerts = AlertsResource(
            webhook_url=webhook.url, smtp_host="127.0.0.1", smtp_port=port, smtp_to="it@ridge.example",
            smtp_user="alerts", smtp_password=SMTP_PASSWORD, smtp_starttls=False,
            reports_url="https://reports.example.org", home=str(tmp_path / "home"),
        )  # fmt: skip
        resources = {**synced.resources, "alerts": alerts}

        sync_failure_alert_sensor(_run_failure_context(instance, held, resources))
        [(_, body)] = webhook.received
        assert body["event"] == "held" and body["district"] == "ridge" and body["night"] == NIGHT2
        assert body["district_name"] == "Ridge Valley Schools"
        assert "nothing was applied" in body["what"]
        assert any(k.startswith("users deactivate") for k in body["details"]), body["details"]
        secret = (tmp_path / "home" / "reports.secret").read_text().strip().encode()
        token = district_token(secret, "ridge")
        assert body["report_url"] == f"https://reports.example.org/d/{token}/date={NIGHT2}/report.html"
        # the report exists for the held night (the report asset itself was skipped by the hold)
        report = synced.archive.open().get_bytes("ridge", NIGHT2, "report.html").decode()
        assert "Held: the drop arrived" in report
        [mail] = inbox.messages
        sent = json.dumps(body) + email.message_from_bytes(mail, policy=email.policy.default).get_content()
        assert "What happened:" in sent
        students = _students(synced.drops[("ridge", NIGHT2)].path)
        assert not [s for s in students if s in sent]
        assert SMTP_PASSWORD not in sent and HOOK_TOKEN not in sent

        # a run that fails (the drop is refused: an unknown OneRoster version): one failed alert
        bad = generate_drop(tmp_path / "dropbox-ridge" / NIGHT3, 60, day=3, seed=3).path
        manifest = (
            (bad / "manifest.csv").read_text().replace("oneroster.version,1.1", "oneroster.version,9.9")
        )
        (bad / "manifest.csv").write_text(manifest)
        result = materialize(
            ASSETS, partition_key=DistrictNight(NIGHT3, "ridge").key, resources=synced.resources,
            instance=instance, run_config=RUN_CONFIG, raise_on_error=False,
        )  # fmt: skip
        assert not result.success
        sync_failure_alert_sensor(_run_failure_context(instance, result, resources))
        assert len(webhook.received) == 2
        body = webhook.received[1][1]
        assert body["event"] == "failed" and body["night"] == NIGHT3
        assert "oneroster_tables" in body["what"] and "drop refused" in body["what"]
        assert body["details"]["run_id"] == result.run_id
        assert not [s for s in students if s in json.dumps(body)]


def test_missing_drop_alerts_once(tmp_path, instance, webhook, registry_home):
    from etl_project_tests.automation import local_district, write_districts

    lincoln = local_district("lincoln", tmp_path / "lincoln", timezone="America/Chicago", expected_by_hour=6)
    districts = write_districts(tmp_path, [lincoln])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["lincoln"])
    due = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    freshness = build_missing_drop_sensor(clock=lambda: due + dt.timedelta(hours=2, minutes=15))
    for event in freshness(
        build_sensor_context(instance=instance, resources={"districts": districts})
    ).asset_events:
        instance.report_runless_asset_event(event)  # what the daemon does with the sensor's result
    # a passing run-less evaluation (another night's drop was on time) is no alert
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=SNAPSHOT, check_name=CHECK_NAME, passed=True, partition="2026-11-26|lincoln"
        )
    )

    alerts = AlertsResource(webhook_url=webhook.url, home=str(tmp_path / "home"))
    resources = {"alerts": alerts, "districts": districts}
    ctx = build_sensor_context(instance=instance, resources=resources)
    missing_drop_alert_sensor(ctx)
    [(_, body)] = webhook.received
    assert body["event"] == "missing_drop" and body["district"] == "lincoln" and body["night"] == "2026-11-27"
    assert "2 h 15 min late" in body["what"] and body["details"] == {"late_minutes": 135}
    # the next tick, from the cursor, sends nothing more
    missing_drop_alert_sensor(build_sensor_context(instance=instance, resources=resources, cursor=ctx.cursor))
    assert len(webhook.received) == 1
