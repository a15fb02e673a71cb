"""``flask doctor``: what an operator runs first when something is off.

It checks the configuration, the database and its migrations, the push workers, the APNs
key and ids, FCM's credentials (a service-account file, or Application Default Credentials
asked for an access token), the SMS gateway and the identity providers' keys, and says
what is wrong in plain words. It is a Flask plugin command (setup.cfg's
``flask.commands``) so that it runs even when the configuration stops the app from loading;
every check reads the settings through ``Config`` (a setting that does not parse is the
one problem then, and the checks that need it are skipped).
"""

import json
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import click
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.config import Config, ConfigurationError
from app.push.fcm_auth import (
    APPLICATION_DEFAULT,
    SERVICE_ACCOUNT_FILE,
    AccessTokenError,
    ApplicationDefaultMinter,
)
from app.web.access_tokens import check_signing_keys

APPLE_ID = re.compile(r"[A-Z0-9]{10}\Z")  # a key id or a team id
BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")
FCM_SETTINGS = ("FCM_CREDENTIALS_FILE", "FCM_PROJECT_ID")
NOT_CHECKED = "not checked until the configuration is fixed"


@dataclass
class Report:
    """What each check found: ``ok`` lines and problems, printed as they come."""

    problems: list[str] = field(default_factory=list)
    passed: int = 0

    def ok(self, subject, text):
        self.passed += 1
        click.echo(f"ok       {subject}: {text}")

    def problem(self, subject, text):
        self.problems.append(text)
        click.echo(f"PROBLEM  {subject}: {text}")

    def skipped(self, subject, text):
        click.echo(f"-        {subject}: {text}")


@click.command("doctor")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for each network check.")
def doctor(timeout):
    """Check the configuration, the database, push (APNs, FCM, the workers), the SMS
    gateway and the identity providers' keys; print each problem in plain words. Exit
    status 1 when anything is wrong."""
    report = Report()
    config = check_configuration(report)
    if config is not None:
        check_database(report, config)
        check_sms_gateway(report, config, timeout)
        check_identity_providers(report, config, timeout)
        check_apns(report, vars(config))
        check_fcm(report, vars(config), timeout)
    else:
        report.skipped("push", NOT_CHECKED)
    if report.problems:
        noun = "problem" if len(report.problems) == 1 else "problems"
        raise click.ClickException(f"{len(report.problems)} {noun} found.")
    click.echo(f"All good: {report.passed} checks passed.")


def check_configuration(report):
    """The Config read and validated, or None when it cannot even be read."""
    try:
        config = Config()
    except ConfigurationError as exc:
        report.problem("configuration", str(exc))
        return None
    try:
        config.validate()
        check_signing_keys(config)
    except ConfigurationError as exc:
        report.problem("configuration", str(exc))
    else:
        report.ok("configuration", f"APP_ENV={config.APP_ENV}, every setting is valid")
    return config


def check_database(report, config):
    from app import create_app
    from app.ops.health import FAILING, NOT_CHECKED, OK

    url = sa.engine.make_url(config.SQLALCHEMY_DATABASE_URI)
    where = url.render_as_string(hide_password=True)
    try:
        app = create_app(config)
    except ConfigurationError:
        report.skipped("database", NOT_CHECKED)
        return
    readiness = app.extensions["readiness"]
    try:
        with readiness.engine().connect() as connection:
            report.ok("database", f"{where} answers")
            migrations = readiness.migrations(connection)
            workers = readiness.push_workers(connection) if migrations["status"] == OK \
                else None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        report.problem("database", f"cannot reach {where}: {reason}")
        return
    if migrations["status"] == OK:
        report.ok("migrations", f"the database is at the head, {', '.join(migrations['head'])}")
    else:
        current = ", ".join(migrations["current"])
        at = f"is at {current}" if current else "has no schema (never migrated)"
        report.problem("migrations", f"the database {at} but the code needs "
                                     f"{', '.join(migrations['head'])}: run flask db upgrade")
        return
    assert workers is not None  # read when the migrations are at the head
    if workers["status"] == FAILING:
        report.problem("push workers", workers["detail"])
    elif workers["status"] == NOT_CHECKED:
        report.skipped("push workers", "not checked: push is not configured")
    elif workers["status"] == OK:
        report.ok("push workers", f"the newest heartbeat is {workers['newest_heartbeat_age']:g} s "
                                  "old")


def check_apns(report, settings):
    from app.push.apns import ApnsSettings
    from app.push.provider_token import ProviderKeyError, load_signing_key

    given = {name: value for name, value in settings.items()
             if name in APNS_NAMES and value}
    if not given:
        report.skipped("APNs", "not configured (no APNS_* setting): iOS pushes are not sent")
        return
    missing = ApnsSettings.missing(settings)
    if missing:
        report.problem("APNs", f"some APNS_* settings are given but not {', '.join(missing)}; "
                               "the push worker will not send")
        return
    problems = _apns_id_problems(given)
    apns = ApnsSettings.from_config(settings)
    assert apns is not None  # every APNS_* setting it needs is given
    try:
        load_signing_key(apns.key)
    except ProviderKeyError as exc:
        problems.append(f"{exc} (APNS_KEY)")
    for text in problems:
        report.problem("APNs", text)
    if not problems:
        report.ok("APNs", f"the key is an EC P-256 key; key id {apns.key_id}, team "
                          f"{apns.team_id}, topic {apns.default_topic}")


# the settings an operator gives (the others have defaults)
APNS_NAMES = ("APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_BUNDLE_ID", "APNS_TOPIC")


def _apns_id_problems(given):
    problems = [f"{name} must be the 10 letters and digits Apple shows, like ABC123DEFG"
                for name in ("APNS_KEY_ID", "APNS_TEAM_ID") if not APPLE_ID.match(given[name])]
    problems += [f"{name} must be an app's bundle id, like com.example.app"
                 for name in ("APNS_BUNDLE_ID", "APNS_TOPIC")
                 if name in given and not BUNDLE_ID.match(given[name])]
    return problems


def check_fcm(report, settings, timeout):
    given = {name: settings.get(name) for name in FCM_SETTINGS if settings.get(name)}
    if not given:
        report.skipped("FCM", "not configured (neither FCM_CREDENTIALS_FILE nor "
                              "FCM_PROJECT_ID): Android pushes are not sent")
        return
    if "FCM_CREDENTIALS_FILE" not in given:
        check_application_default(report, given["FCM_PROJECT_ID"], settings.get("FCM_CA_FILE"),
                                  timeout)
        return
    problems, project = _service_account_problems(Path(given["FCM_CREDENTIALS_FILE"]))
    if project and given.get("FCM_PROJECT_ID", project) != project:
        problems.append(f"FCM_PROJECT_ID is {given['FCM_PROJECT_ID']} but the service account "
                        f"belongs to {project}")
    for text in problems:
        report.problem("FCM", text)
    if not problems:
        report.ok("FCM", f"{SERVICE_ACCOUNT_FILE}: the key is readable, project {project}")


def check_application_default(report, project, ca_file, timeout):
    """FCM_PROJECT_ID without FCM_CREDENTIALS_FILE: Application Default Credentials, asked
    for an access token as the push worker would (nothing is stored)."""
    minter = ApplicationDefaultMinter(ca_file, timeout=timeout)
    try:
        minter.sign(int(time.time()))
    except AccessTokenError as exc:
        report.problem("FCM", f"{APPLICATION_DEFAULT} (FCM_PROJECT_ID without "
                              f"FCM_CREDENTIALS_FILE): {exc}; Android pushes wait")
        return
    report.ok("FCM", f"{APPLICATION_DEFAULT} ({minter.identity}) give an access token, "
                     f"project {project}")


def _service_account_problems(path):
    """(problems, project id) of a Google service-account key file."""
    try:
        account = json.loads(path.read_text())
    except OSError as exc:
        return [f"cannot read FCM_CREDENTIALS_FILE {path}: {exc.strerror}"], None
    except ValueError:
        return [f"FCM_CREDENTIALS_FILE {path} is not JSON"], None
    if not isinstance(account, dict) or account.get("type") != "service_account":
        return [f"FCM_CREDENTIALS_FILE {path} is not a service-account key "
                '("type": "service_account")'], None
    problems = [f"FCM_CREDENTIALS_FILE has no {name}"
                for name in ("project_id", "client_email", "private_key")
                if not isinstance(account.get(name), str) or not account[name]]
    if "private_key" not in " ".join(problems):
        try:
            key = load_pem_private_key(account["private_key"].encode(), password=None)
        except ValueError:
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            problems.append("FCM_CREDENTIALS_FILE's private_key is not an RSA private key")
    return problems, account.get("project_id")


def check_sms_gateway(report, config, timeout):
    if config.SMS_SENDER == "outbox":
        report.skipped("SMS", "texts go to the outbox (SMS_SENDER=outbox): nobody receives "
                              "them; flask sms outbox shows them")
        return
    twilio = config.SMS_SENDER == "twilio"
    setting, secret = ("TWILIO_BASE_URL", "Twilio's credentials") if twilio \
        else ("SMS_GATEWAY_URL", "SMS_GATEWAY_TOKEN")
    url = getattr(config, setting)
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        report.problem("SMS", f"{setting} must be an http(s) URL, not {url!r}")
        return
    if parts.scheme == "http" and (twilio or config.SMS_GATEWAY_TOKEN):
        report.problem("SMS", f"{setting} is http://: {secret} would cross the network "
                              "unencrypted")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        report.problem("SMS", f"cannot connect to the SMS gateway at {parts.hostname}:{port}: "
                              f"{exc.strerror or type(exc).__name__}")
        return
    report.ok("SMS", f"the gateway at {parts.hostname}:{port} accepts connections")


def check_identity_providers(report, config, timeout):
    from app.identity.keys import KeysUnavailable, load_key_document, parse_key_document

    if not config.ID_TOKEN_PROVIDERS:
        report.skipped("identity providers", "none configured (ID_TOKEN_PROVIDERS, "
                                             "FIREBASE_PROJECT_ID)")
        return
    with requests.Session() as http:
        for provider in config.ID_TOKEN_PROVIDERS:
            subject = f"identity provider {provider.issuer}"
            try:
                document, _ = load_key_document(provider.keys_url, http, timeout)
                keys = parse_key_document(document)
            except KeysUnavailable as exc:
                report.problem(subject, f"its keys at {provider.keys_url}: {exc}")
                continue
            report.ok(subject, f"{len(keys)} keys at {provider.keys_url}")
