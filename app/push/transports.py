"""The registry of transports: channel → the ``message.Transport`` that sends to it.

The webhook channel always has its transport (it needs no provider); Telegram has one
when ``TELEGRAM_BOT_TOKEN`` is set. A channel gets its provider's transport when that
provider is configured, else the
development stand-in (``outbox.py``) when ``PUSH_STANDIN=outbox``, else none (its
deliveries fail as ``ChannelNotConfigured``). A new channel is one entry here.
"""

import contextlib

from app.models.device import Channel
from app.push.apns import ApnsClient, ApnsSettings
from app.push.fcm import FcmClient, FcmSettings
from app.push.fcm_auth import ACCESS_TOKEN_MAX_AGE, access_token_source
from app.push.message import Transport
from app.push.outbox import OutboxTransport
from app.push.provider_token import ProviderTokenCache, ProviderTokenSigner, SharedTokenCache
from app.push.settings import PushSettings
from app.push.telegram import TelegramSettings, TelegramTransport
from app.push.token_store import DatabaseTokenStore
from app.push.webhook import WebhookSettings, WebhookTransport


async def open_transports(push: PushSettings, config, engine,
                          stack: contextlib.AsyncExitStack) -> dict[str, Transport]:
    """Each channel's transport, opened on ``stack`` (closed with it)."""
    transports: dict[str, Transport] = {}
    if push.apns is not None:
        transports[Channel.IOS_PUSH] = await stack.enter_async_context(
            apns_client(push.apns, engine))
    if push.fcm_credentials is not None:
        transports[Channel.FCM] = await stack.enter_async_context(fcm_client(config, engine))
    transports[Channel.WEBHOOK] = await stack.enter_async_context(
        WebhookTransport(WebhookSettings.from_config(config), engine))
    telegram = TelegramSettings.from_config(config)
    if telegram is not None:
        transports[Channel.TELEGRAM] = await stack.enter_async_context(
            TelegramTransport(telegram, engine))
    if push.standing_in:
        for channel in Channel:
            transports.setdefault(channel, OutboxTransport(engine, channel))
    return transports


def apns_client(settings: ApnsSettings, engine) -> ApnsClient:
    """The APNs client, its provider token shared by every worker through the database."""
    signer = ProviderTokenSigner.from_key(settings.key, settings.key_id, settings.team_id)
    tokens = ProviderTokenCache(signer, DatabaseTokenStore(engine, settings.team_id,
                                                           settings.key_id),
                                max_age=settings.token_max_age)
    return ApnsClient(settings, tokens)


def fcm_client(config, engine) -> FcmClient:
    """The FCM client, its access token (from a key file or Application Default
    Credentials) shared by every worker through the database."""
    source = access_token_source(config)
    tokens = SharedTokenCache(source.minter, DatabaseTokenStore(engine, *source.store_key),
                              max_age=ACCESS_TOKEN_MAX_AGE)
    return FcmClient(FcmSettings.from_config(config, source.project_id), tokens)
