"""Apple bundle ids, as a device registers one and APNS_BUNDLE_ID / APNS_TOPIC name one.

What Apple allows (reverse-DNS: letters, digits, hyphens and dots, at most 155 characters).
It becomes the ``apns-topic`` header: anything else (a CR, LF or space) would put a
malformed header on a connection other users' pushes share."""

import re

MAX_BUNDLE_ID_LENGTH = 155
BUNDLE_ID = re.compile(rf"[A-Za-z0-9.-]{{1,{MAX_BUNDLE_ID_LENGTH}}}")  # reverse-DNS


def is_bundle_id(text):
    return isinstance(text, str) and BUNDLE_ID.fullmatch(text) is not None
