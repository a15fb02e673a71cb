"""Senders of verification texts: the outbox (development) and an HTTP gateway."""

from flask import current_app

from app.observability import metrics
from app.sms.gateway import HttpGatewaySender, SmsDeliveryError, SmsDeliveryUncertain
from app.sms.outbox import OutboxSender

__all__ = ["HttpGatewaySender", "OutboxSender", "SmsDeliveryError", "SmsDeliveryUncertain",
           "sender"]


def sender():
    """The configured sender, its texts counted (``pushreg_sms_texts_total``)."""
    return Counted(_configured())


def _configured():
    kind = current_app.config["SMS_SENDER"]
    if kind == "outbox":
        return OutboxSender()
    if kind == "http":
        return HttpGatewaySender.from_config(current_app.config)
    raise RuntimeError(f"unknown SMS_SENDER {kind!r}; use 'outbox' or 'http'")


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
