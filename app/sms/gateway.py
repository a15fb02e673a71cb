import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class SmsDeliveryError(RuntimeError):
    """The text could not be handed to the gateway."""


class HttpGatewaySender:
    """POSTs ``{"to", "body", "from"}`` as JSON to an SMS gateway.

    Connection errors and 429/5xx answers are retried with exponential backoff;
    anything else non-2xx fails at once.
    """

    def __init__(self, url, token=None, sender_id=None, timeout=5.0, retries=2):
        self.url = url
        self.sender_id = sender_id
        self.timeout = timeout
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"
        retry = Retry(total=retries, connect=retries, read=retries, status=retries,
                      backoff_factor=0.2, status_forcelist=RETRY_STATUSES,
                      allowed_methods=frozenset({"POST"}), raise_on_status=False)
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.mount("https://", HTTPAdapter(max_retries=retry))

    @classmethod
    def from_config(cls, config):
        return cls(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_TOKEN"),
                   config.get("SMS_GATEWAY_FROM"), config["SMS_GATEWAY_TIMEOUT"],
                   config["SMS_GATEWAY_RETRIES"])

    def send(self, to, body):
        payload = {"to": to, "body": body}
        if self.sender_id:
            payload["from"] = self.sender_id
        try:
            response = self.http.post(self.url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("SMS gateway unreachable: %s", type(exc).__name__)
            raise SmsDeliveryError("the SMS gateway could not be reached") from exc
        if not response.ok:
            log.warning("SMS gateway answered %s", response.status_code)
            raise SmsDeliveryError(f"the SMS gateway answered {response.status_code}")
