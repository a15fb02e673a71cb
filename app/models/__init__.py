"""The one data model every wire format is a view of."""

from app.models.credential import Credential, CredentialKind
from app.models.device import Channel, Device, Environment
from app.models.identity import ProviderIdentity
from app.models.rate_limit import RateLimitCounter
from app.models.sms import SmsMessage
from app.models.user import User
from app.models.verification import VerificationCode

__all__ = [
    "Channel",
    "Credential",
    "CredentialKind",
    "Device",
    "Environment",
    "ProviderIdentity",
    "RateLimitCounter",
    "SmsMessage",
    "User",
    "VerificationCode",
]
