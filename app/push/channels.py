"""APNs's channel management API (iOS 18 broadcast channels): create, read and delete the
channels Live Activities subscribe to, on its own hosts and ports (``MANAGE_*_URL``).

Each call opens its own HTTP/2 connection and closes it: channels are made and deleted a
few times per event, not per push. The provider token is the one every worker shares
(``provider_tokens``): a token of its own would count as a new one every call, and APNs
refuses new tokens more often than every 20 minutes.
"""

import asyncio
import dataclasses
import json

from app.push.apns import SANDBOX, ApnsSettings
from app.push.http2 import (
    ClientSettings,
    Http2Client,
    InvalidHeaderError,
    TransportError,
    make_ssl_context,
)
from app.push.provider_token import ProviderTokenCache, ProviderTokenSigner
from app.push.token_store import DatabaseTokenStore

PUSH_TYPE = "LiveActivity"  # the channel's push type, as the management API spells it
CHANNEL_HEADER = "apns-channel-id"
NO_MESSAGE_STORED, MOST_RECENT_MESSAGE_STORED = 0, 1


@dataclasses.dataclass(frozen=True)
class ChannelAnswer:
    """What the management API answered: ``status`` (None: it could not be reached),
    APNs's ``reason`` and the channel id it gave (a create)."""

    status: int | None
    reason: str | None = None
    channel_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class ChannelManager:
    """Calls the channel management API of one app (``settings.bundle_id``)."""

    def __init__(self, settings: ApnsSettings, engine):
        self._settings = settings
        signer = ProviderTokenSigner.from_key(settings.key, settings.key_id, settings.team_id)
        self._tokens = ProviderTokenCache(
            signer, DatabaseTokenStore(engine, settings.team_id, settings.key_id),
            max_age=settings.token_max_age)

    def create(self, environment: str, storage_policy: int) -> ChannelAnswer:
        body = {"message-storage-policy": storage_policy, "push-type": PUSH_TYPE}
        return self._call(environment, "POST", "channels", body=body)

    def delete(self, environment: str, channel_id: str) -> ChannelAnswer:
        return self._call(environment, "DELETE", "channels", channel_id=channel_id)

    def _call(self, environment, method, resource, *, channel_id=None, body=None):
        return asyncio.run(self._request(environment, method, resource, channel_id, body))

    async def _request(self, environment, method, resource, channel_id, body):
        path = f"/1/apps/{self._settings.bundle_id}/{resource}"
        headers = [("content-type", "application/json")] if body is not None else []
        if channel_id is not None:
            headers.append((CHANNEL_HEADER, channel_id))
        payload = json.dumps(body).encode() if body is not None else b""
        client = Http2Client(self._origin(environment), ClientSettings(connections=1),
                             make_ssl_context(self._settings.ca_file))
        try:
            for _ in range(2):  # a second time only with a renewed provider token
                token = self._tokens.current()
                response = await client.request(
                    method, path, (("authorization", f"bearer {token}"), *headers), payload,
                    self._settings.request_timeout)
                answer = _answer(response)
                if answer.reason != "ExpiredProviderToken":
                    return answer
                self._tokens.expired(token)
            return answer
        except (TransportError, InvalidHeaderError) as exc:
            return ChannelAnswer(None, type(exc).__name__)
        finally:
            await client.close()

    def _origin(self, environment):
        return self._settings.manage_sandbox_url if environment == SANDBOX \
            else self._settings.manage_production_url


def _answer(response) -> ChannelAnswer:
    reason = None
    if response.status >= 300:
        try:
            reason = json.loads(response.body).get("reason")
        except (ValueError, AttributeError):
            reason = None
    return ChannelAnswer(response.status, reason, response.headers.get(CHANNEL_HEADER))
