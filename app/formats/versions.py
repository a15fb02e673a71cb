"""App bundle versions, as clients send them and MINIMUM_BUNDLE_VERSION names one."""

import re

VERSION = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){0,3}\Z")  # ASCII digits; $ lets "\n" in
