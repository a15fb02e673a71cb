"""The JSON:API resource types the service exposes: how each is found, shown and related."""

import dataclasses

from app.api.schemas.apple_device_tokens import AppleDeviceTokenSchema
from app.api.schemas.audience_counts import AudienceCountSchema
from app.api.schemas.auth_tokens import AccessTokenSchema, AuthTokenSchema
from app.api.schemas.configs import ConfigSchema
from app.api.schemas.devices import DeviceChangeSchema, DeviceSchema
from app.api.schemas.live_activities import LiveActivitySchema
from app.api.schemas.live_activity_channels import LiveActivityChannelSchema
from app.api.schemas.notifications import (
    DeliverySchema,
    NotificationChangeSchema,
    NotificationSchema,
)
from app.api.schemas.sessions import SessionSchema
from app.api.schemas.topics import TopicSchema
from app.api.schemas.users import UserSchema
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import HIDDEN, Relationship, ResourceType, registry
from app.models import Channel, Device
from app.resources import (
    auth_tokens,
    devices,
    live_activities,
    live_activity_channels,
    notifications,
    sessions,
    topics,
    users,
)
from app.resources.listing import Filter, boolean
from app.security import policies

APNS = Channel.IOS_PUSH
# Poparazzi filters tokens by is_production, its view of the environment.
TOKEN_FILTERS = {
    **{name: devices.FILTERS[name] for name in ("bundle_id", "is_voip", "is_invalidated")},
    "is_production": Filter("is_production", Device.environment,
                            lambda text: "production" if boolean(text) else "sandbox"),
}


def _session_id(session, principal):
    """A session id is its holder's secret: shown to the holder, to nobody else."""
    return policies.shown_session_id(principal, session.id)


def _token_session(device, principal):
    if device.session_id is None:
        return None
    return policies.shown_session_id(principal, device.session_id) or HIDDEN


def _is_self(user, principal):
    return policies.is_self(principal, user.id)


APPLE_DEVICE_TOKENS = registry.add(ResourceType(
    type="apple_device_tokens",
    schema=AppleDeviceTokenSchema,
    id_of=lambda device, principal: device.token,
    load=lambda principal, token, include:
        devices.get_owned(principal, APNS, token, load=include),
    collection=Capabilities(collection=True, sortable=("created_at", "updated_at"),
                            filterable=tuple(TOKEN_FILTERS)),
    relationships={
        "session": Relationship("session", "sessions", linkage=_token_session),
        "user": Relationship("user", "users", key="user_id"),
    },
))

DEVICES = registry.add(ResourceType(
    type="devices",
    schema=DeviceSchema,
    load=lambda principal, device_id, include:
        devices.get_owned_by_id(principal, device_id, load=include),
    collection=Capabilities(collection=True, sortable=tuple(devices.ORDERS),
                            filterable=tuple(devices.FILTERS)),
    relationships={
        "user": Relationship("user", "users", key="user_id"),
        "topics": Relationship("topics", "topics", many=True, page=topics.of_device,
                               remove=topics.remove_from_device, links_only=True),
    },
))
# What a PATCH of a device takes (not registered: responses are drawn with DEVICES).
DEVICE_CHANGES = dataclasses.replace(DEVICES, schema=DeviceChangeSchema)

TOPICS = registry.add(ResourceType(
    type="topics",
    schema=TopicSchema,
    id_of=lambda subscription, principal: subscription.topic,
    collection=Capabilities(collection=False),
))

SESSIONS = registry.add(ResourceType(
    type="sessions",
    schema=SessionSchema,
    id_of=_session_id,
    load=lambda principal, public_id, include: sessions.held_session(principal, public_id),
    relationships={"user": Relationship("user", "users", key="user_id")},
))

USERS = registry.add(ResourceType(
    type="users",
    schema=UserSchema,
    load=lambda principal, user_id, include: users.get_user(user_id, include),
    collection=Capabilities(collection=True, sortable=tuple(users.ORDERS),
                            filterable=tuple(users.FILTERS)),
    relationships={
        "devices": Relationship(
            "devices", "devices", many=True, visible=_is_self,
            page=lambda principal, user, listing: devices.list_of_user(
                principal, user, None, listing, default_order=devices.LATEST_SEEN_FIRST),
            remove=devices.detach_ids_from_user),
    },
    private_attributes={"phone_number": _is_self},
))

AUTH_TOKENS = registry.add(ResourceType(
    type="auth_tokens",
    schema=AuthTokenSchema,
    load=lambda principal, token_id, include: auth_tokens.get_own(principal, token_id),
    collection=Capabilities(collection=False),
    relationships={"user": Relationship("user", "users", key="user_id"),
                   "device": Relationship("device", "devices", key="device_id")},
))

ACCESS_TOKENS = registry.add(ResourceType(
    type="access_tokens",
    schema=AccessTokenSchema,
    collection=Capabilities(collection=False),
))

CONFIGS = registry.add(ResourceType(
    type="configs",
    schema=ConfigSchema,
    id_of=lambda config, principal: config.bundle_version,
))

NOTIFICATIONS = registry.add(ResourceType(
    type="notifications",
    schema=NotificationSchema,
    collection=Capabilities(collection=False),
    relationships={
        "deliveries": Relationship(
            "deliveries", "deliveries", many=True,
            page=lambda principal, notification, listing:
                notifications.list_deliveries(principal, notification, listing)),
    },
))

# What a PATCH of a notification takes (not registered: responses are drawn with
# NOTIFICATIONS).
NOTIFICATION_CHANGES = dataclasses.replace(NOTIFICATIONS, schema=NotificationChangeSchema)

# An audience's size, asked with filter[audience] (and filter[push_type]): one resource,
# no collection to page or sort (its route takes contract.FILTERED).
AUDIENCE_COUNTS = registry.add(ResourceType(
    type="audience_counts",
    schema=AudienceCountSchema,
    collection=Capabilities(filterable=("audience", "push_type")),
))

DELIVERIES = registry.add(ResourceType(
    type="deliveries",
    schema=DeliverySchema,
    id_of=lambda delivery, principal: str(delivery.apns_id),
    collection=Capabilities(collection=True, sortable=tuple(notifications.DELIVERY_ORDERS),
                            filterable=tuple(notifications.DELIVERY_FILTERS)),
))

LIVE_ACTIVITIES = registry.add(ResourceType(
    type="live_activities",
    schema=LiveActivitySchema,
    load=lambda principal, activity_id, include: live_activities.get(principal, activity_id),
    collection=Capabilities(collection=True, sortable=tuple(live_activities.ORDERS),
                            filterable=tuple(live_activities.FILTERS)),
    relationships={"device": Relationship("device", "devices", key="device_id"),
                   "user": Relationship("user", "users", key="user_id")},
))

LIVE_ACTIVITY_CHANNELS = registry.add(ResourceType(
    type="live_activity_channels",
    schema=LiveActivityChannelSchema,
    load=lambda principal, channel_id, include:
        live_activity_channels.get_owned(principal, channel_id),
    collection=Capabilities(collection=True, sortable=tuple(live_activity_channels.ORDERS),
                            filterable=tuple(live_activity_channels.FILTERS)),
))
