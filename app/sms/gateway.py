import logging
import time
import uuid

import requests
from urllib3.exceptions import ConnectTimeoutError, ProtocolError

log = logging.getLogger(__name__)

# Answers that say the text was not taken: safe to send again.
RETRY_STATUSES = frozenset({429, 503})
BACKOFF = 0.2  # seconds before the first retry; doubled for each one after
MAX_RETRY_AFTER = 3.0  # seconds; a gateway asking for a longer pause is not waited for


class SmsDeliveryError(RuntimeError):
    """The text could not be handed to the gateway."""


class SmsDeliveryUncertain(SmsDeliveryError):
    """The gateway got the text but did not answer: it may have been delivered."""


class HttpGatewaySender:
    """POSTs ``{"to", "body", "from"}`` as JSON to an SMS gateway.

    Only what cannot have been sent is retried: a connection that was never made, and
    429/503 answers (after their Retry-After, when short). A read timeout is never
    retried, as the gateway may be sending the text; every attempt at one text carries
    the same ``Idempotency-Key`` so a gateway that supports it sends it once.
    """

    def __init__(self, url, token=None, sender_id=None, timeout=5.0, retries=2,
                 max_retry_after=MAX_RETRY_AFTER):
        self.url = url
        self.sender_id = sender_id
        self.timeout = timeout
        self.retries = retries
        self.max_retry_after = max_retry_after
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_config(cls, config):
        return cls(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_TOKEN"),
                   config.get("SMS_GATEWAY_FROM"), config["SMS_GATEWAY_TIMEOUT"],
                   config["SMS_GATEWAY_RETRIES"])

    def send(self, to, body):
        payload = self.payload(to, body)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for retry in range(self.retries + 1):
            pause = self._attempt(payload, headers)
            if pause is None:
                return
            if retry == self.retries or pause > self.max_retry_after:
                break
            time.sleep(max(pause, BACKOFF * 2**retry))
        raise SmsDeliveryError("the SMS gateway did not take the text")

    def payload(self, to, body):
        payload = {"to": to, "body": body}
        if self.sender_id:
            payload["from"] = self.sender_id
        return payload

    def post(self, payload, headers):
        return self.http.post(self.url, json=payload, headers=headers, timeout=self.timeout)

    def _attempt(self, payload, headers):
        """None once the gateway took the text; else seconds it asked us to wait (0 when
        it did not say) before a retry. Raises when a retry could send the text twice or
        cannot help."""
        try:
            response = self.post(payload, headers)
        except requests.RequestException as exc:
            return self._retry_after_failure(exc)
        if response.ok:
            return None
        log.warning("SMS gateway answered %s", response.status_code)
        if response.status_code not in RETRY_STATUSES:
            raise SmsDeliveryError(f"the SMS gateway answered {response.status_code}")
        return _seconds(response.headers.get("Retry-After"))

    @staticmethod
    def _retry_after_failure(exc):
        if _never_sent(exc):
            log.warning("SMS gateway unreachable: %s", type(exc).__name__)
            return 0.0
        if _maybe_sent(exc):
            log.warning("SMS gateway took the text but did not answer (%s); it may have "
                        "been delivered", type(exc).__name__)
            raise SmsDeliveryUncertain("the SMS gateway did not answer") from exc
        log.warning("SMS gateway request failed: %s", type(exc).__name__)
        raise SmsDeliveryError("the SMS gateway request failed") from exc


class TwilioSender(HttpGatewaySender):
    """Twilio's Messages API: a form-encoded POST to
    ``{base}/2010-04-01/Accounts/{account SID}/Messages.json`` with Basic auth (the account
    SID and auth token, or an API key's SID and secret), from a Messaging Service or a
    number. Plain ``requests``, not the ``twilio`` package: the retry rules above (never
    after a read timeout) must hold, and the package retries on its own terms and brings
    aiohttp along. Twilio has no idempotency key for messages, so the never-retry-what-may-
    have-been-sent rule is what keeps a text from going twice."""

    def __init__(self, base_url, account_sid, auth, *, messaging_service_sid=None,
                 from_number=None, timeout=5.0, retries=2):
        super().__init__(f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/"
                         "Messages.json", timeout=timeout, retries=retries)
        self.http.auth = auth
        self.sender = {"MessagingServiceSid": messaging_service_sid} \
            if messaging_service_sid else {"From": from_number}

    @classmethod
    def from_config(cls, config):
        account = config["TWILIO_ACCOUNT_SID"]
        auth = (config["TWILIO_API_KEY_SID"], config["TWILIO_API_KEY_SECRET"]) \
            if config.get("TWILIO_API_KEY_SID") else (account, config["TWILIO_AUTH_TOKEN"])
        return cls(config["TWILIO_BASE_URL"], account, auth,
                   messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
                   from_number=config.get("TWILIO_FROM_NUMBER"),
                   timeout=config["SMS_GATEWAY_TIMEOUT"], retries=config["SMS_GATEWAY_RETRIES"])

    def payload(self, to, body):
        return {"To": to, "Body": body, **self.sender}

    def post(self, payload, headers):
        return self.http.post(self.url, data=payload, timeout=self.timeout)


def _never_sent(exc):
    """The connection was never made, so the gateway saw nothing. (requests reports
    these as a MaxRetryError whose reason is the connect error; errors after the
    request went out are reported as they are.)"""
    return isinstance(getattr(_cause(exc), "reason", None), ConnectTimeoutError)


def _maybe_sent(exc):
    """The request went out and the answer never came: read timeout or dropped line."""
    return isinstance(exc, requests.ReadTimeout) or isinstance(_cause(exc), ProtocolError)


def _cause(exc):
    return exc.args[0] if exc.args else None


def _seconds(retry_after):
    """Retry-After in seconds (HTTP dates are treated as 'longer than we wait')."""
    if retry_after is None:
        return 0.0
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return float("inf")
