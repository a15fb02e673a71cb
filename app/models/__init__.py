"""The one data model every wire format is a view of."""

from app.models.credential import Credential, CredentialKind
from app.models.dev_push import DevPushMessage
from app.models.device import APNS_CHANNELS, Channel, Device, DeviceTopic, Environment
from app.models.heartbeat import WorkerHeartbeat
from app.models.identity import ProviderIdentity
from app.models.live_activity import LiveActivity, LiveActivityChannel
from app.models.notification import (
    FINAL_STATES,
    Delivery,
    DeliveryCount,
    DeliveryState,
    Notification,
    NotificationStatus,
    ProviderToken,
    ThrottleMoment,
)
from app.models.rate_limit import RateLimitCounter
from app.models.receipt import ReceiptBatch, ReceiptEvent
from app.models.send_slot import SendSlot
from app.models.sms import SmsMessage
from app.models.user import User
from app.models.verification import VerificationCode

__all__ = [
    "APNS_CHANNELS",
    "FINAL_STATES",
    "Channel",
    "Credential",
    "CredentialKind",
    "Delivery",
    "DeliveryCount",
    "DeliveryState",
    "DevPushMessage",
    "Device",
    "DeviceTopic",
    "Environment",
    "LiveActivity",
    "LiveActivityChannel",
    "Notification",
    "NotificationStatus",
    "ProviderIdentity",
    "ProviderToken",
    "RateLimitCounter",
    "ReceiptBatch",
    "ReceiptEvent",
    "SendSlot",
    "SmsMessage",
    "ThrottleMoment",
    "User",
    "VerificationCode",
    "WorkerHeartbeat",
]
