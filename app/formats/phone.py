"""Phone numbers: the one form users' numbers are kept in."""

import re

E164 = re.compile(r"\+[1-9][0-9]{6,14}\Z")  # ASCII digits; \Z, as $ lets "\n" through
