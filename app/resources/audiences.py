"""Audiences: which devices a notification goes to when it names no users or devices:
``{"all": true}``, ``{"topics": [...]}`` or ``{"condition": "..."}`` (FCM's condition
language), each optionally narrowed by ``where``.

``parse`` checks an audience as a sender wrote it (every error names its member under
``audience``); ``Audience.conditions`` is the SQL a device must meet; ``Audience.admits``
what SQL cannot say portably (versions compared as versions, done on each chunk's rows).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, not_, or_

from app.errors import ErrorList, InvalidAttribute
from app.formats.bundle_ids import is_bundle_id
from app.models import Channel, Device, DeviceTopic, Environment
from app.resources.topics import is_topic_name

MEMBER = "audience"
KINDS = ("all", "topics", "condition")
WHERE_MEMBERS = ("channel", "environment", "bundle_id", "app_version", "time_zone",
                 "last_seen_after", "last_seen_before")
VERSION_BOUNDS = ("gt", "gte", "lt", "lte")
MAX_TOPICS = 5  # in a condition (FCM's limit); a list of topics may hold MAX_LISTED
MAX_LISTED = 100
MAX_CONDITION_LENGTH = 1000
MAX_NESTING = 20
MAX_LIST = 100  # values in one where member
VERSION = re.compile(r"\d{1,9}(\.\d{1,9}){0,7}")
TIME_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


class ConditionError(ValueError):
    def __init__(self, message, offset):
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


# -- the condition language ---------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<quoted>'[^']*'|"[^"]*")"""
                    r"""|(?P<word>[A-Za-z]+))""")


def _tokens(text):
    """(kind, value, offset) for each token; an unknown character is an error at it."""
    position, tokens = 0, []
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            offset = len(text) - len(text[position:].lstrip())
            quote = text[offset] in "'\""
            raise ConditionError("Unbalanced quote" if quote else
                                 f"Unexpected character {text[offset]!r}", offset)
        kind = match.lastgroup
        assert kind is not None  # every alternative of the pattern is a named group
        tokens.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    """condition := or; or := and ('||' and)*; and := not ('&&' not)*;
    not := '!' not | '(' or ')' | 'name' 'in' 'topics'."""

    def __init__(self, text):
        self.tokens = _tokens(text)
        self.index = 0
        self.topics = 0

    def parse(self):
        tree = self._or(0)
        kind, value, offset = self._peek()
        if kind != "end":
            raise ConditionError(f"Unexpected {value!r}", offset)
        return tree

    def _peek(self):
        return self.tokens[self.index]

    def _take(self):
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _accept(self, value):
        if self._peek()[:2] == ("op", value):
            self.index += 1
            return True
        return False

    def _binary(self, operator, operand, depth):
        parts = [operand(depth)]
        while self._accept(operator):
            parts.append(operand(depth))
        return parts[0] if len(parts) == 1 else (operator, tuple(parts))

    def _or(self, depth):
        return self._binary("||", self._and, depth)

    def _and(self, depth):
        return self._binary("&&", self._not, depth)

    def _not(self, depth):
        offset = self._peek()[2]
        if depth > MAX_NESTING:
            raise ConditionError(f"Nested more than {MAX_NESTING} deep", offset)
        if self._accept("!"):
            return ("!", self._not(depth + 1))
        if self._accept("("):
            inner = self._or(depth + 1)
            if not self._accept(")"):
                raise ConditionError("Expected ')'", self._peek()[2])
            return inner
        return self._topic()

    def _topic(self):
        kind, value, offset = self._take()
        if kind != "quoted":
            what = "the end" if kind == "end" else repr(value)
            raise ConditionError(f"Expected a quoted topic name, '(' or '!', found {what}",
                                 offset)
        name = value[1:-1]
        if not is_topic_name(name):
            raise ConditionError(f"{value} is not a topic name (1 to 256 of "
                                 "A-Z a-z 0-9 _ . ~ % -)", offset)
        self.topics += 1
        if self.topics > MAX_TOPICS:
            raise ConditionError(f"More than {MAX_TOPICS} topics", offset)
        for expected in ("in", "topics"):
            kind, word, at = self._take()
            if (kind, word) != ("word", expected):
                raise ConditionError(f"Expected '{expected}'", at)
        return ("topic", name)


def parse_condition(text):
    """FCM's condition as a tree: ("topic", name), ("!", tree), ("&&"|"||", trees)."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"Longer than {MAX_CONDITION_LENGTH} characters",
                             MAX_CONDITION_LENGTH)
    return _Parser(text).parse()


def _condition_sql(tree):
    kind = tree[0]
    if kind == "topic":
        return _subscribed([tree[1]])
    if kind == "!":
        return not_(_condition_sql(tree[1]))
    combine = and_ if kind == "&&" else or_
    return combine(*(_condition_sql(part) for part in tree[1]))


def _subscribed(names):
    return exists().where(DeviceTopic.device_id == Device.id, DeviceTopic.topic.in_(names))


# -- versions --------------------------------------------------------------------------


def version_key(text):
    """A version as comparable numbers (2.10 > 2.9, 2.3 == 2.3.0), or None when it is not
    dotted numbers."""
    if not isinstance(text, str) or VERSION.fullmatch(text) is None:
        return None
    numbers = [int(part) for part in text.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


_COMPARE = {"gt": lambda key, bound: key > bound, "gte": lambda key, bound: key >= bound,
            "lt": lambda key, bound: key < bound, "lte": lambda key, bound: key <= bound}


# -- the audience -------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    everyone: bool = False
    topics: tuple = ()
    condition: tuple | None = None
    channels: tuple = ()
    environment: str | None = None
    bundle_ids: tuple = ()
    versions: dict = field(default_factory=dict)  # bound name → version key
    time_zones: tuple = ()
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None

    def conditions(self):
        """What a device must meet, in SQL (beside being reachable by the push)."""
        conditions = []
        if self.topics:
            conditions.append(_subscribed(list(self.topics)))
        if self.condition is not None:
            conditions.append(_condition_sql(self.condition))
        if self.channels:
            conditions.append(Device.channel.in_(self.channels))
        if self.environment:
            conditions.append(Device.environment == self.environment)
        if self.bundle_ids:
            conditions.append(Device.bundle_id.in_(self.bundle_ids))
        if self.versions:
            conditions.append(Device.app_version.is_not(None))
        if self.time_zones:
            conditions.append(or_(*(Device.time_zone.startswith(zone, autoescape=True)
                                    if zone.endswith("/") else Device.time_zone == zone
                                    for zone in self.time_zones)))
        if self.last_seen_after:
            conditions.append(Device.last_seen_at > self.last_seen_after)
        if self.last_seen_before:
            conditions.append(Device.last_seen_at < self.last_seen_before)
        return conditions

    @property
    def filters_in_python(self):
        return bool(self.versions)

    def admits(self, app_version):
        """The part SQL does not decide: the app version's bounds."""
        if not self.versions:
            return True
        key = version_key(app_version)
        return key is not None and all(_COMPARE[bound](key, limit)
                                       for bound, limit in self.versions.items())


def parse(raw, *, environment=None):
    """An audience as sent (a JSON object), checked; every error names its member.
    ``environment`` (an operator's option) narrows it like ``where.environment``."""
    if not isinstance(raw, dict):
        raise _invalid("An audience is an object: all, topics or condition, and where.")
    unknown = sorted(set(raw) - {*KINDS, "where"})
    if unknown:
        raise _invalid(f"Unknown member {unknown[0]!r}; an audience has all, topics or "
                       "condition, and where.", unknown[0])
    chosen = [kind for kind in KINDS if kind in raw]
    if len(chosen) != 1:
        raise _invalid("Give exactly one of all, topics or condition.")
    kind = chosen[0]
    values = {"everyone": _all(raw["all"])} if kind == "all" else \
        {"topics": _topics(raw["topics"])} if kind == "topics" else \
        {"condition": _condition(raw["condition"])}
    where = _where(raw.get("where", {}))
    if environment is not None:
        where["environment"] = environment
    return Audience(**values, **where)


def stored(audience_document, environment=None):
    """The audience as stored with its notification: what the sender sent, with an
    operator's environment folded into ``where``."""
    if environment is None:
        return audience_document
    return {**audience_document,
            "where": {**audience_document.get("where", {}), "environment": environment}}


def _invalid(detail, *path, code="INVALID_AUDIENCE"):
    return InvalidAttribute(detail, field=(MEMBER, *path), code=code)


def _all(value):
    if value is not True:
        raise _invalid("all takes true.", "all")
    return True


def _topics(value):
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LISTED:
        raise _invalid(f"topics takes a list of 1 to {MAX_LISTED} topic names.", "topics")
    errors = [_invalid("Not a topic name (1 to 256 of A-Z a-z 0-9 _ . ~ % -).", "topics",
                       index) for index, name in enumerate(value) if not is_topic_name(name)]
    if errors:
        raise ErrorList(errors)
    return tuple(dict.fromkeys(value))


def _condition(value):
    if not isinstance(value, str):
        raise _invalid("condition takes a string, like \"'a' in topics && !('b' in "
                       "topics)\".", "condition")
    try:
        return parse_condition(value)
    except ConditionError as exc:
        raise _invalid(f"{exc}.", "condition", code="INVALID_CONDITION") from None


def _where(value):
    if not isinstance(value, dict):
        raise _invalid("where takes an object.", "where")
    unknown = sorted(set(value) - set(WHERE_MEMBERS))
    if unknown:
        raise _invalid(f"Unknown member {unknown[0]!r}; where takes "
                       f"{', '.join(WHERE_MEMBERS)}.", "where", unknown[0])
    errors, parsed = [], {}
    for name, read in _WHERE_READERS.items():
        if name in value:
            try:
                parsed.update(read(value[name]))
            except InvalidAttribute as error:
                errors.append(error)
    if errors:
        raise ErrorList(errors)
    return parsed


def _choices(name, value, allowed, what):
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
        raise _invalid(f"{name} takes a list of 1 to {MAX_LIST} {what}.", "where", name)
    for index, item in enumerate(value):
        if not allowed(item):
            raise _invalid(f"Not one of the {what}.", "where", name, index)
    return tuple(dict.fromkeys(value))


def _channels(value):
    channels = tuple(Channel)
    return {"channels": _choices("channel", value, lambda item: item in channels,
                                 f"channels ({', '.join(channels)})")}


def _environment(value):
    if value not in tuple(Environment):
        raise _invalid("environment is sandbox or production.", "where", "environment")
    return {"environment": value}


def _bundle_ids(value):
    return {"bundle_ids": _choices("bundle_id", value, is_bundle_id, "bundle ids")}


def _versions(value):
    if not isinstance(value, dict) or not value:
        raise _invalid(f"app_version takes an object of {', '.join(VERSION_BOUNDS)}.",
                       "where", "app_version")
    bounds = {}
    for bound, version in value.items():
        if bound not in VERSION_BOUNDS:
            raise _invalid(f"Unknown bound {bound!r}; use {', '.join(VERSION_BOUNDS)}.",
                           "where", "app_version", bound)
        key = version_key(version)
        if key is None:
            raise _invalid("A version is dotted numbers, like \"2.3\" or \"2.10.1\".",
                           "where", "app_version", bound)
        bounds[bound] = key
    return {"versions": bounds}


def _time_zones(value):
    return {"time_zones": _choices(
        "time_zone", value, lambda item: isinstance(item, str) and
        TIME_ZONE.fullmatch(item) is not None,
        "time zone names (\"Europe/Paris\") or area prefixes (\"Europe/\")")}


def _moment(name):
    def read(value):
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise _invalid(f"{name} takes an ISO 8601 timestamp with a zone.", "where", name)
        return {name: moment}
    return read


_WHERE_READERS = {"channel": _channels, "environment": _environment,
                  "bundle_id": _bundle_ids, "app_version": _versions,
                  "time_zone": _time_zones, "last_seen_after": _moment("last_seen_after"),
                  "last_seen_before": _moment("last_seen_before")}
