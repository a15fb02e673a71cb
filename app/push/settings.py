"""Push settings, read once from the ``Config`` (``app/config.py``): which channels have a
provider, whether the development stand-in stands in for the others, and the queue.

The worker, ``/readyz``, ``flask doctor`` and the CLI all ask this object.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from app.push.apns import ApnsSettings
from app.push.fcm_auth import credentials_kind

STANDIN_OUTBOX, STANDIN_OFF = "outbox", "off"
STANDINS = (STANDIN_OUTBOX, STANDIN_OFF)


@dataclass(frozen=True)
class PushSettings:
    apns: ApnsSettings | None  # None: APNs is not configured
    fcm_credentials: str | None  # the kind (fcm_auth.credentials_kind); None: FCM is off
    standin: str  # STANDIN_OUTBOX: channels without a provider go to the outbox
    queue: str  # PUSH_QUEUE
    chunk_size: int

    @classmethod
    def from_config(cls, config: Mapping) -> "PushSettings":
        """``config``: the Flask config, or a ``Config``'s ``vars``."""
        apns = ApnsSettings.from_config(config)
        fcm = credentials_kind(config)
        return cls(apns, fcm, _standin(config, apns is not None or fcm is not None),
                   config["PUSH_QUEUE"], config["PUSH_CHUNK_SIZE"])

    @property
    def providers_configured(self) -> bool:
        """APNs or FCM credentials are given (FCM_PROJECT_ID alone: Application Default
        Credentials): some push can leave this machine."""
        return self.apns is not None or self.fcm_credentials is not None

    @property
    def standing_in(self) -> bool:
        return self.standin == STANDIN_OUTBOX

    @property
    def sends(self) -> bool:
        """A push worker has something to send through."""
        return self.providers_configured or self.standing_in


def _standin(config: Mapping, providers_configured: bool) -> str:
    """``PUSH_STANDIN``; unset: the outbox in development when no provider is configured."""
    if config["PUSH_STANDIN"]:
        return config["PUSH_STANDIN"]
    development = config["APP_ENV"] == "development"
    return STANDIN_OUTBOX if development and not providers_configured else STANDIN_OFF
