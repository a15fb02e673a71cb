from app.extensions import db
from app.models import SmsMessage


class OutboxSender:
    """Keeps texts in the database, in the caller's transaction; ``flask sms outbox``
    prints them."""

    def send(self, to, body):
        db.session.add(SmsMessage(to=to, body=body))
