"""The wheel's contents. Metadata and dependencies are in setup.cfg.

The design card keeps the Alembic scripts in the checkout's top-level migrations/; the wheel
ships that directory as the package ``app.migrations`` (a package_dir mapping, which
setup.cfg cannot combine with ``find:``), so an installed ``pushreg migrate`` finds them
without a checkout and the two can never differ.
"""

from setuptools import find_packages, setup

MIGRATIONS = ["app.migrations", "app.migrations.versions"]

setup(
    packages=find_packages(include=["app", "app.*", "schemas", "schemas.*"]) + MIGRATIONS,
    package_dir={"app.migrations": "migrations"},
    package_data={"app.migrations": ["alembic.ini", "script.py.mako", "README"]},
)
