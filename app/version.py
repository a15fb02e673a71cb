"""The one place the version is written: setup.cfg reads it (attr:), and ``pushreg
--version``, ``/healthz`` and the OpenAPI document show it."""

__version__ = "0.2.0"
