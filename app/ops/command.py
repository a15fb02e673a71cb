"""``pushreg``: the installed command. It is ``flask`` with the app already named, so every
``flask`` command (``doctor``, ``keys``, ``push``, ``prune``, ``sms``, ``db``) is here with
the same implementation, plus the three an operator starts a deployment with: ``serve``,
``migrate`` and ``worker``."""

import os
import sys

import click
from flask.cli import FlaskGroup, with_appcontext

from app import create_app
from app.version import __version__

GUNICORN_CONFIG = "python:app.ops.gunicorn_config"
APPLICATION = "app:create_app()"


@click.command("serve", context_settings={"ignore_unknown_options": True,
                                          "allow_extra_args": True})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args):
    """Serve the API with gunicorn and the package's configuration (app/ops/gunicorn_config.py:
    PORT or GUNICORN_BIND, WEB_CONCURRENCY, ...). Extra arguments go to gunicorn, such as
    --bind 0.0.0.0:8000."""
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG,
            *gunicorn_args, APPLICATION]
    # exec, not a child: a supervisor's signals (SIGTERM, SIGHUP) reach gunicorn itself
    os.execv(sys.executable, argv)


@click.command("migrate")
@with_appcontext
def migrate():
    """Bring the database's schema to the head of the shipped migrations (flask db
    upgrade)."""
    from flask_migrate import upgrade

    upgrade()


def _worker():
    from app.ops.cli.push import worker

    return worker


class Pushreg(FlaskGroup):
    def __init__(self):
        super().__init__(name="pushreg", create_app=lambda: create_app(),
                         add_version_option=False,
                         help="The pushreg service: serve the API, migrate, run the push "
                              "worker, and every operator's command.")
        self.params.append(click.Option(
            ["--version"], is_flag=True, expose_value=False, is_eager=True,
            help="Show the version and exit.", callback=_print_version))
        self.add_command(serve)
        self.add_command(migrate)

    def get_command(self, ctx, name):
        # ``pushreg worker`` is ``flask push worker``; imported on use, for the push
        # modules read PROMETHEUS_MULTIPROC_DIR on import
        if name == "worker":
            return _worker()
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), "worker"})


def _print_version(ctx, param, value):
    if value and not ctx.resilient_parsing:
        click.echo(f"pushreg {__version__}")
        ctx.exit()


def main():
    Pushreg().main(prog_name="pushreg")
