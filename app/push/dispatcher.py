"""The dispatcher: one claimed chunk of deliveries → each channel's transport → the ledger
and the devices.

Each delivery goes to the transport of its device's channel (``transports``: channel →
``message.Transport``; a channel without one fails its deliveries as
``ChannelNotConfigured``). Every transport answers with the same ``Action``s (each maps its
provider's table onto them: APNS.md's in ``apns.py``, FCM.md's in ``fcm.py``).

For a chunk it loads the notifications and devices in two queries, has each device's
transport address it (its token rule: for APNs, host by the device's environment, topic by
its bundle id, VoIP devices get VoIP pushes, Live Activity pushes go to the Live Activity
token), sends each channel's batch through its ``send_many`` and applies the table:

- 200: sent.
- 410 Unregistered / ExpiredToken: invalidate the token unless it was registered again
  after APNs's timestamp (the device's ``last_seen_at``), then the delivery just fails.
- 400 BadDeviceToken, DeviceTokenNotForTopic: invalidate, reason recorded. When an
  implausible share of a batch answers BadDeviceToken, that is a configuration problem, not
  dead tokens: those deliveries fail as ``Quarantined`` and no token is touched.
- 429, 5xx, transport errors, an unknown outcome: retry with backoff, the same apns-id.
- configuration errors (provider key, certificate, topic) and payload errors: the delivery
  fails, the token is never touched, it is logged as an ERROR, and for key and topic
  errors sending pauses (``Pauses``) instead of failing everything behind it.
"""

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select

from app.database.engine import write_transaction
from app.models.device import Channel
from app.models.device import Device as DeviceModel
from app.models.notification import FINAL_STATES, DeliveryState, Notification
from app.models.types import utcnow
from app.observability import metrics
from app.push import fcm, ledger, message, receipts
from app.push import live_activities as activities
from app.push.message import Action, Address, Refusal, Transport
from app.push.queue import NO_QUEUE, Queue
from app.resources import live_activity_channels as channels
from app.resources.devices import Invalidation, invalidate
from app.resources.live_activities import Ending
from app.resources.live_activities import end as end_activities

log = logging.getLogger(__name__)

devices_table = DeviceModel.__table__
notifications_table = Notification.__table__

# Answers that say the provider key (or certificate) is wrong: nothing sent with it can
# succeed, whatever its topic.
KEY_ERRORS = frozenset({
    "InvalidProviderToken", "MissingProviderToken", "BadCertificate",
    "BadCertificateEnvironment", "Forbidden", "UnrelatedKeyIdInToken",
    "BadEnvironmentKeyIdInToken"})
# Answers that say a topic is not this key's to send to (FCM's: the project or its
# credentials are wrong; its topic is the whole channel).
TOPIC_ERRORS = frozenset({"BadTopic", "TopicDisallowed", "MissingTopic"}) | fcm.CHANNEL_ERRORS
# A token refused as malformed (not as gone): when most of a batch says so, it is the
# configuration that is wrong.
BAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "INVALID_ARGUMENT"})
NOT_CONFIGURED = "ChannelNotConfigured"
EVERY_TOPIC = "*"
QUARANTINED = "Quarantined"


@dataclasses.dataclass(frozen=True)
class DispatchSettings:
    retry: ledger.RetryPolicy = dataclasses.field(default_factory=ledger.RetryPolicy)
    config_error_pause: float = 300.0
    quarantine_ratio: float = 0.5
    quarantine_min: int = 20
    invalidation_policy: str = "mark"  # or "delete"
    live_activity_max_age: timedelta = timedelta(hours=12)

    @classmethod
    def from_config(cls, config) -> "DispatchSettings":
        return cls(
            retry=ledger.RetryPolicy(config["PUSH_RETRY_BASE"], config["PUSH_RETRY_MAX"],
                                     config["PUSH_MAX_ATTEMPTS"]),
            config_error_pause=config["PUSH_CONFIG_ERROR_PAUSE"],
            quarantine_ratio=config["PUSH_QUARANTINE_RATIO"],
            quarantine_min=config["PUSH_QUARANTINE_MIN"],
            invalidation_policy=config["PUSH_INVALIDATION_POLICY"],
            live_activity_max_age=timedelta(seconds=config["LIVE_ACTIVITY_MAX_AGE"]))


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelEnding:
    """A broadcast channel APNs answered is gone: it takes no more broadcasts."""

    channel_id: uuid.UUID
    reason: str


class Pauses:
    """Topics (or every topic) not to send to until a moment: after a configuration error,
    the deliveries behind it wait instead of failing one by one."""

    def __init__(self, clock=time.time):
        self._until: dict[str, float] = {}
        self._clock = clock

    def pause(self, topic: str, seconds: float):
        self._until[topic] = max(self._until.get(topic, 0), self._clock() + seconds)
        metrics.paused(topic, self._until[topic])

    def remaining(self, topic: str = EVERY_TOPIC) -> float:
        """Seconds ``topic`` stays paused (every topic's pause counts for each)."""
        if not self._until:  # asked twice a push: most of the time nothing was paused
            return 0.0
        now = self._clock()
        until = max(self._until.get(topic, 0), self._until.get(EVERY_TOPIC, 0))
        return max(0.0, until - now)


@dataclasses.dataclass(slots=True)  # one per push: unfrozen ones are cheaper to build
class Target:
    """One claimed delivery, ready to send."""

    claimed: ledger.Claimed
    address: Address
    device_id: uuid.UUID | None  # None for a broadcast
    registered_at: datetime
    deadline: datetime | None
    channel: str
    live_activity_id: uuid.UUID | None = None
    live_activity_channel_id: uuid.UUID | None = None  # a broadcast

    @property
    def topic(self) -> str:
        return self.address.topic

    @property
    def item(self):
        return self.address.device, self.address.notification, str(self.claimed.apns_id)


@dataclasses.dataclass
class Plan:
    targets: list[Target] = dataclasses.field(default_factory=list)
    results: list[ledger.Result] = dataclasses.field(default_factory=list)
    paused: dict[int, float] = dataclasses.field(default_factory=dict)  # id → seconds


class Dispatcher:
    def __init__(self, transports: Mapping[str, Transport], engine,
                 settings: DispatchSettings, pauses: Pauses | None = None,
                 queue: Queue = NO_QUEUE):
        """``transports``: channel → transport. ``queue`` is told of the deliveries put
        back to pending, in the transaction that does it (a job queue enqueues them)."""
        self._transports = transports
        self._engine = engine
        self._settings = settings
        self._queue = queue
        self.pauses = pauses or Pauses()

    async def dispatch(self, chunk: list[ledger.Claimed]) -> Counter:
        """Send one claimed chunk and record every outcome; the new states, counted."""
        clock = time.perf_counter()
        notifications, devices, running, broadcast = await asyncio.to_thread(self._load,
                                                                             chunk)
        plan = self._plan(chunk, notifications, devices, running, broadcast, utcnow())
        loaded, started = time.perf_counter(), utcnow()
        results, invalidations = await self._send(plan.targets, started)
        answered = time.perf_counter()
        written = await asyncio.to_thread(self._write, plan.results + results, invalidations,
                                          plan.paused, {claimed.id: claimed for claimed in chunk})
        metrics.count_deliveries(written)
        log.debug("chunk of %d: loaded in %.3f s, sent in %.3f s, recorded in %.3f s",
                  len(chunk), loaded - clock, answered - loaded, time.perf_counter() - answered)
        counts = Counter(result.state.value for result in written)
        counts["handed_back"] = len(plan.paused)
        return counts

    async def _send(self, targets, started):
        """Each channel's targets through its client, the channels concurrently; each
        batch judged on its own (a mass failure on one channel says nothing of another)."""
        by_channel = defaultdict(list)
        for target in targets:
            by_channel[target.channel].append(target)

        async def send(channel, batch):
            outcomes = await self._transports[channel].send_many([t.item for t in batch])
            return self._judge(batch, outcomes, started)

        results, invalidations = [], []
        for judged in await asyncio.gather(*(send(*group) for group in by_channel.items())):
            results += judged[0]
            invalidations += judged[1]
        return results, invalidations

    def release(self, chunk: list[ledger.Claimed]):
        """Hand a chunk back unsent (or with its outcome unknown) on shutdown."""
        now = utcnow()
        with write_transaction(self._engine) as connection:
            canceled = set(_release(connection, chunk, now))
            self._queue.requeue(connection, {claimed.id: now for claimed in chunk
                                             if claimed.id not in canceled})

    # -- loading and building ------------------------------------------------------------

    def _load(self, chunk):
        notification_ids = {claimed.notification_id for claimed in chunk}
        # a delivery to an activity reads its device with the activity (``activities.load``)
        device_ids = {claimed.device_id for claimed in chunk
                      if claimed.device_id is not None and not claimed.live_activity_id}
        with self._engine.connect() as connection:
            notifications = {row.id: row for row in connection.execute(
                select(notifications_table.c.id, notifications_table.c.push_type,
                       notifications_table.c.content, notifications_table.c.expires_at,
                       notifications_table.c.canceled_at)
                .where(ledger.among(connection, notifications_table.c.id, notification_ids)))}
            devices = {row.id: row for row in connection.execute(
                select(devices_table.c.id, devices_table.c.channel, devices_table.c.token,
                       devices_table.c.environment,
                       devices_table.c.bundle_id, devices_table.c.is_voip,
                       devices_table.c.live_activity_token, devices_table.c.is_invalidated,
                       devices_table.c.last_seen_at, devices_table.c.signing_secret,
                       devices_table.c.failing_since)
                .where(ledger.among(connection, devices_table.c.id, device_ids)))} \
                if device_ids else {}
            running = activities.load(connection, chunk)
            broadcast = channels.load(connection, {
                claimed.live_activity_channel_id for claimed in chunk
                if claimed.live_activity_channel_id})
        return notifications, devices, running, broadcast

    def _plan(self, chunk, notifications, devices, running, broadcast, now) -> Plan:
        plan = Plan()
        built: dict[uuid.UUID, message.Notification | str] = {}  # str: why it cannot be built
        for claimed in chunk:
            row = notifications[claimed.notification_id]
            if row.id not in built:
                built[row.id] = _notification_of(row)
            if claimed.live_activity_channel_id:
                outcome = self._broadcast(claimed, row, built[row.id], broadcast, now)
            else:
                device = activities.addressed(claimed, built[row.id], devices, running, now,
                                              self._settings.live_activity_max_age)
                outcome = self._target(claimed, row, built[row.id], device, now)
            if isinstance(outcome, ledger.Result):
                plan.results.append(outcome)
            elif paused := max(self.pauses.remaining(outcome.topic),
                               self.pauses.remaining(outcome.channel)):
                plan.paused[claimed.id] = paused
            else:
                plan.targets.append(outcome)
        return plan

    def _target(self, claimed, row, notification, device, now) -> Target | ledger.Result:
        def fail(reason, detail):
            return _failed_before_sending(claimed, reason, detail)

        if unsendable := _unsendable(claimed, row, notification, now):
            return unsendable
        if isinstance(device, activities.NotSent):
            return ledger.Result(claimed.id, device.state, reason=device.reason,
                                 detail=device.detail)
        if device is None:
            return fail("DeviceGone", "the device was deleted")
        if device.is_invalidated:
            return fail("DeviceInvalidated", "the device's token was invalidated")
        transport = self._transports.get(device.channel)
        if transport is None:
            return fail(NOT_CONFIGURED, f"no client for the device's channel "
                                        f"{device.channel or '(none)'}: is it configured?")
        address = transport.address(device, notification)
        if isinstance(address, Refusal):
            return fail(address.reason, address.detail)
        return Target(claimed, address, device.id, device.last_seen_at, row.expires_at,
                      device.channel, claimed.live_activity_id)

    def _broadcast(self, claimed, row, notification, broadcast, now
                   ) -> Target | ledger.Result:
        """A broadcast's target: the channel at APNs (gone or ended: it fails)."""
        def fail(reason, detail):
            return _failed_before_sending(claimed, reason, detail)

        if unsendable := _unsendable(claimed, row, notification, now):
            return unsendable
        channel = broadcast.get(claimed.live_activity_channel_id)
        if channel is None:
            return fail("ChannelGone", "the live activity channel was deleted")
        if channel.ended_at is not None:
            return fail("ChannelEnded", "APNs said the channel is gone")
        transport = self._transports.get(Channel.IOS_PUSH)
        if transport is None or not hasattr(transport, "broadcast_address"):
            return fail(NOT_CONFIGURED, "broadcasts need APNs: is it configured?")
        address = transport.broadcast_address(channel, notification)
        if isinstance(address, Refusal):
            return fail(address.reason, address.detail)
        return Target(claimed, address, None, channel.created_at, row.expires_at,
                      Channel.IOS_PUSH, live_activity_channel_id=channel.id)

    # -- judging the answers -------------------------------------------------------------

    def _judge(self, targets, outcomes, started):
        quarantine = self._quarantine(outcomes)
        results, invalidations, refused = [], [], Counter[tuple]()
        for target, outcome in zip(targets, outcomes, strict=True):
            if outcome.action is Action.INVALIDATE:
                result, invalidation = self._invalidate(target, outcome, started, quarantine)
                if invalidation:
                    invalidations.append(invalidation)
            elif outcome.action is Action.SENT:
                result = ledger.Result(target.claimed.id, DeliveryState.SENT, 200)
                if activities.ends(target):
                    invalidations.append(Ending(target.live_activity_id, activities.ENDED))
            elif outcome.action is Action.CONFIG_ERROR:
                refused[(outcome.reason, outcome.status, target.topic)] += 1
                result = _failed(target, outcome)
            elif outcome.action is Action.FAIL:
                result = _failed(target, outcome)
            else:  # RETRY, or REMINT_AND_RETRY when even the renewed token was refused
                result = self._settings.retry.retry(
                    target.claimed, target.deadline, utcnow(), status=outcome.status,
                    reason=outcome.reason or "TransportError", detail=outcome.detail,
                    at_least=outcome.retry_after or 0)
            results.append(result)
        self._pause_for(refused)
        return results, invalidations

    def _quarantine(self, outcomes) -> bool:
        bad = sum(_bad_token(outcome) for outcome in outcomes)
        if len(outcomes) < self._settings.quarantine_min or \
                bad <= self._settings.quarantine_ratio * len(outcomes):
            return False
        reason = next(outcome.reason for outcome in outcomes if _bad_token(outcome))
        log.error("%s answered %s to %d of %d pushes in one batch: that is a configuration "
                  "problem (wrong environment, key or project?), not dead tokens. Those "
                  "deliveries fail as %s and no token is invalidated.",
                  "FCM" if reason == "INVALID_ARGUMENT" else "APNs", reason, bad,
                  len(outcomes), QUARANTINED)
        return True

    def _invalidate(self, target, outcome, started, quarantine):
        claimed_id = target.claimed.id
        if quarantine and _bad_token(outcome):
            return ledger.Result(claimed_id, DeliveryState.FAILED, outcome.status, QUARANTINED,
                                 f"{outcome.reason} in a batch where most tokens were "
                                 "refused"), None
        cutoff = started
        if outcome.status == 410:
            cutoff = outcome.unregistered_at or started
            if target.registered_at > cutoff:
                return ledger.Result(claimed_id, DeliveryState.FAILED, outcome.status,
                                     outcome.reason, "the token was registered again after "
                                     "APNs unregistered it: kept"), None
        reason = outcome.reason or "Unregistered"
        if target.live_activity_channel_id is not None:  # the channel is gone at APNs
            return (ledger.Result(claimed_id, DeliveryState.INVALIDATED, outcome.status, reason),
                    ChannelEnding(target.live_activity_channel_id, reason))
        if target.live_activity_id is not None:  # the activity's token: only it ends
            return (ledger.Result(claimed_id, DeliveryState.INVALIDATED, outcome.status, reason),
                    Ending(target.live_activity_id, reason, target.address.stored_token))
        return (ledger.Result(claimed_id, DeliveryState.INVALIDATED, outcome.status, reason),
                Invalidation(target.device_id, target.address.stored_token, reason, cutoff,
                             target.address.live_activity))

    def _pause_for(self, refused: Counter):
        for (reason, status, topic), count in refused.items():
            # a key error stops APNs, not the other channels
            scope = Channel.IOS_PUSH if reason in KEY_ERRORS else topic \
                if reason in TOPIC_ERRORS else None
            pause = f"; sending to {'APNs' if scope == Channel.IOS_PUSH else scope} pauses " \
                    f"for {self._settings.config_error_pause:g} s" if scope else ""
            log.error("Configuration or payload error %s %s for topic %s: %d "
                      "deliveries failed, no token touched%s", status or "-", reason, topic,
                      count, pause)
            if scope:
                self.pauses.pause(scope, self._settings.config_error_pause)

    # -- writing -------------------------------------------------------------------------

    def _write(self, results, invalidations, paused, claimed) -> list[ledger.Result]:
        """Record the outcomes and hand back the paused deliveries: the results as written
        (a retry of a canceled notification is canceled)."""
        now = utcnow()
        with write_transaction(self._engine) as connection:
            # the hand-backs first: each takes its cancel locks before it writes a row
            # (``ledger``), so none may come after the outcomes are written
            canceled: list[int] = []
            for seconds in set(paused.values()):
                canceled += _release(connection, [claimed[id_] for id_, s in paused.items()
                                                  if s == seconds],
                                     now, now + timedelta(seconds=seconds))
            paused = {id_: s for id_, s in paused.items() if id_ not in set(canceled)}
            results = ledger.record(connection, results, now, claimed)
            receipts.keep(connection, [result.delivery_id for result in results
                                       if result.state in FINAL_STATES], now)
            invalidate(connection, [item for item in invalidations
                                    if isinstance(item, Invalidation)],
                       now, self._settings.invalidation_policy)
            end_activities(connection, [item for item in invalidations
                                        if isinstance(item, Ending)], now)
            channels.end(connection, [(item.channel_id, item.reason) for item in invalidations
                                      if isinstance(item, ChannelEnding)], now)
            self._queue.requeue(connection, _back_to_pending(results, paused, now))
        return results


def _release(connection, chunk, now, at=None) -> list[int]:
    """``ledger.release``, with a receipt for each delivery it canceled (their ids)."""
    canceled = ledger.release(connection, chunk, now, at)
    receipts.keep(connection, canceled, now)
    return canceled


def _back_to_pending(results, paused, now) -> dict[int, datetime]:
    due = {result.delivery_id: result.next_attempt_at for result in results
           if result.state is DeliveryState.PENDING}
    return due | {id_: now + timedelta(seconds=seconds) for id_, seconds in paused.items()}


def _failed_before_sending(claimed, reason, detail) -> ledger.Result:
    return ledger.Result(claimed.id, DeliveryState.FAILED, reason=reason, detail=detail)


def _unsendable(claimed, row, notification, now) -> ledger.Result | None:
    """Whatever the target: the notification was canceled (a lease that ran out, or a
    claim just before the cancel), expired, or cannot be built."""
    if row.canceled_at is not None:
        return ledger.canceled_result(claimed.id)
    if row.expires_at is not None and row.expires_at <= now:
        return ledger.Result(claimed.id, DeliveryState.EXPIRED, reason="Expired",
                             detail="the notification expired before it was sent")
    if isinstance(notification, str):
        return _failed_before_sending(claimed, "InvalidNotification", notification)
    return None


def _bad_token(outcome) -> bool:
    return outcome.action is Action.INVALIDATE and outcome.reason in BAD_TOKEN_REASONS


def _failed(target, outcome) -> ledger.Result:
    return ledger.Result(target.claimed.id, DeliveryState.FAILED, outcome.status,
                         outcome.reason, outcome.detail)


def _notification_of(row) -> message.Notification | str:
    """The stored notification; a string says why it cannot be built."""
    try:
        return message.from_stored(row.push_type, row.content)
    except (TypeError, ValueError) as exc:
        return f"the stored notification cannot be built: {exc}"
