"""App configuration per bundle version, from the service's configuration."""

from types import SimpleNamespace

from flask import current_app

from app.errors import BadRequest, Where
from app.formats.versions import VERSION


def version_key(version):
    """``'3.10.0'`` → ``(3, 10)``: numeric, so 3.10 is newer than 3.9, and 3.1 == 3.1.0."""
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def config_for(bundle_version):
    if not VERSION.match(bundle_version):
        raise BadRequest("A bundle version is dotted numbers, like 3.1.23.",
                         code="INVALID_BUNDLE_VERSION", field="bundle_version", where=Where.URL)
    minimum = current_app.config["MINIMUM_BUNDLE_VERSION"]
    return SimpleNamespace(
        bundle_version=bundle_version,
        is_app_update_required=version_key(bundle_version) < version_key(minimum),
        **current_app.config["CLIENT_CONFIG"],
    )
