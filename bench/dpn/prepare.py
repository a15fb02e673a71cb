"""Migrate the DPN database, create users with DRF tokens, and count one registration's
queries. Run with the DPN virtual environment, from bench/:

    .venv-dpn/bin/python -m dpn.prepare --users 1000 --credentials results/dpn.credentials

Prints one JSON line: the statements one ``POST /device/apns/`` runs.
"""

import argparse
import json
import os
import secrets
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dpn.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402  (after django.setup)
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402


def create_users(count):
    """``count`` users, each with a token; their keys."""
    users = User.objects.bulk_create(
        User(username=f"bench{index}", password="!") for index in range(count))
    tokens = Token.objects.bulk_create(
        Token(user=user, key=secrets.token_hex(20)) for user in users)
    return [token.key for token in tokens]


def count_registration(key):
    client = Client(headers={"Authorization": f"Token {key}"})
    body = json.dumps({"registration_id": secrets.token_hex(32), "active": True})
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/device/apns/", body, content_type="application/json")
    if response.status_code != 201:
        raise SystemExit(f"POST /device/apns/ answered {response.status_code}: "
                         f"{response.content[:300]!r}")
    return {"statements": len(queries),
            "sql": [" ".join(query["sql"].split()) for query in queries]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--credentials", type=Path, required=True)
    args = parser.parse_args()
    call_command("migrate", verbosity=0, interactive=False)
    keys = create_users(args.users)
    args.credentials.write_text("".join(f"{key}\n" for key in keys))
    print(json.dumps(count_registration(keys[0])))


if __name__ == "__main__":
    main()
