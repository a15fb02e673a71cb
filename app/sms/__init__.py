"""Senders of verification texts: the outbox (development) and an HTTP gateway."""

from flask import current_app

from app.sms.gateway import HttpGatewaySender, SmsDeliveryError, SmsDeliveryUncertain
from app.sms.outbox import OutboxSender

__all__ = ["HttpGatewaySender", "OutboxSender", "SmsDeliveryError", "SmsDeliveryUncertain",
           "sender"]


def sender():
    kind = current_app.config["SMS_SENDER"]
    if kind == "outbox":
        return OutboxSender()
    if kind == "http":
        return HttpGatewaySender.from_config(current_app.config)
    raise RuntimeError(f"unknown SMS_SENDER {kind!r}; use 'outbox' or 'http'")
