"""Senders of verification texts: the outbox (development), an HTTP gateway, Twilio."""

from flask import current_app

from app.observability import metrics
from app.sms.gateway import (
    HttpGatewaySender,
    SmsDeliveryError,
    SmsDeliveryUncertain,
    TwilioSender,
)
from app.sms.outbox import OutboxSender

__all__ = ["HttpGatewaySender", "OutboxSender", "SmsDeliveryError", "SmsDeliveryUncertain",
           "TwilioSender", "sender"]
SENDERS: dict[str, type[HttpGatewaySender] | type[TwilioSender]] = {
    "http": HttpGatewaySender, "twilio": TwilioSender}


def sender():
    """The configured sender, its texts counted (``pushreg_sms_texts_total``)."""
    return Counted(_configured())


def _configured():
    kind = current_app.config["SMS_SENDER"]
    if kind == "outbox":
        return OutboxSender()
    if kind in SENDERS:
        return SENDERS[kind].from_config(current_app.config)
    raise RuntimeError(f"unknown SMS_SENDER {kind!r}; use 'outbox', 'http' or 'twilio'")


class Counted:
    def __init__(self, sender):
        self._sender = sender

    def send(self, to, body):
        try:
            self._sender.send(to, body)
        except SmsDeliveryUncertain:
            metrics.TEXTS.labels("uncertain").inc()
            raise
        except SmsDeliveryError:
            metrics.TEXTS.labels("failed").inc()
            raise
        metrics.TEXTS.labels("sent").inc()
