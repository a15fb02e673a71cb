"""The moments a scheduled notification's deliveries get (app/push/moments.py), against
zoneinfo, on a frozen clock: every start is given, nothing reads the time."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.push import moments
from app.push.moments import MINUTE, Throttle, local_moment, zone_named

UTC_ZONE = ZoneInfo("UTC")


def at(text):
    return datetime.fromisoformat(text)


# zone, start (UTC), wall time → the moment, as the zone's own wall clock and offset show it
TABLE = [
    # +14: the first 09:00 there is the next morning, local
    ("Pacific/Kiritimati", "2026-06-01T00:00Z", "09:00", "2026-06-02T09:00+14:00"),
    # -11: still the day before there
    ("Pacific/Pago_Pago", "2026-06-01T00:00Z", "09:00", "2026-06-01T09:00-11:00"),
    ("Asia/Kolkata", "2026-06-01T00:00Z", "09:00", "2026-06-01T09:00+05:30"),
    ("Asia/Kathmandu", "2026-06-01T00:00Z", "09:00", "2026-06-01T09:00+05:45"),
    ("Asia/Kathmandu", "2026-06-01T03:16Z", "09:00", "2026-06-02T09:00+05:45"),  # just past
    ("Asia/Kolkata", "2026-06-01T03:30Z", "09:00", "2026-06-01T09:00+05:30"),  # exactly now
    ("Asia/Kolkata", "2026-06-01T00:00Z", "09:00:30", "2026-06-01T09:00:30+05:30"),
    # Lord Howe moves half an hour: 02:00 → 02:30 on 2026-10-04, 02:00 → 01:30 on 04-05
    ("Australia/Lord_Howe", "2026-10-03T00:00Z", "02:15", "2026-10-04T02:45+11:00"),
    ("Australia/Lord_Howe", "2026-10-03T00:00Z", "02:30", "2026-10-04T02:30+11:00"),
    ("Australia/Lord_Howe", "2026-04-04T00:00Z", "01:45", "2026-04-05T01:45+11:00"),
    ("Australia/Lord_Howe", "2026-04-04T14:50Z", "01:45", "2026-04-05T01:45+10:30"),
    # New York: 02:00 → 03:00 on 2026-03-08, 02:00 → 01:00 on 11-01
    ("America/New_York", "2026-03-07T12:00Z", "02:30", "2026-03-08T03:30-04:00"),
    ("America/New_York", "2026-03-07T12:00Z", "02:00", "2026-03-08T03:00-04:00"),
    ("America/New_York", "2026-03-07T12:00Z", "03:00", "2026-03-08T03:00-04:00"),
    ("America/New_York", "2026-03-07T12:00Z", "01:59:59", "2026-03-08T01:59:59-05:00"),
    ("America/New_York", "2026-10-31T12:00Z", "01:30", "2026-11-01T01:30-04:00"),
    # past the first 01:30 but before the second: the second, not tomorrow's
    ("America/New_York", "2026-11-01T05:45Z", "01:30", "2026-11-01T01:30-05:00"),
    ("America/New_York", "2026-11-01T06:45Z", "01:30", "2026-11-02T01:30-05:00"),
    # London: 01:00 → 02:00 on 2026-03-29, 02:00 → 01:00 on 10-25
    ("Europe/London", "2026-03-28T12:00Z", "01:30", "2026-03-29T02:30+01:00"),
    ("Europe/London", "2026-03-28T12:00Z", "00:59", "2026-03-29T00:59+00:00"),
    ("Europe/London", "2026-10-24T12:00Z", "01:30", "2026-10-25T01:30+01:00"),
    ("Europe/London", "2026-10-24T12:00Z", "02:00", "2026-10-25T02:00+00:00"),
]


@pytest.mark.parametrize(("zone", "start", "wall", "expected"), TABLE)
def test_the_first_moment_the_wall_clock_reads_the_time(zone, start, wall, expected):
    moment = local_moment(at(start), time.fromisoformat(wall), ZoneInfo(zone))
    assert moment == at(expected)
    assert moment.tzinfo is UTC
    shown = moment.astimezone(ZoneInfo(zone))
    assert (shown.isoformat(), shown.utcoffset()) == \
        (at(expected).isoformat(), at(expected).utcoffset())


ZONES = sorted({row[0] for row in TABLE} | {"UTC", "America/St_Johns", "Pacific/Chatham"})


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES),
       start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
       hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_no_earlier_minute_reads_the_time(zone, start, hour, minute):
    """Brute force: walk the minutes from the start; the first whose wall clock reads the
    time is the moment, unless that wall time falls in a gap that day."""
    zone_info, wall = ZoneInfo(zone), time(hour, minute)
    start = start.replace(second=0, microsecond=0, tzinfo=UTC)
    moment = local_moment(start, wall, zone_info)
    assert start <= moment < start + timedelta(hours=26)
    walked = start
    while walked.astimezone(zone_info).time() != wall and walked < moment:
        walked += MINUTE
    if moment.astimezone(zone_info).time() == wall:
        assert walked == moment
    else:  # a gap: the wall time moved forward by the gap's length
        naive = datetime.combine(moment.astimezone(zone_info).date(), wall)
        gap = naive.replace(tzinfo=zone_info, fold=0).utcoffset() - \
            naive.replace(tzinfo=zone_info, fold=1).utcoffset()
        assert gap != timedelta(0)
        assert moment.astimezone(zone_info).replace(tzinfo=None) == naive + abs(gap)


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus_Mons", "../../etc/passwd",
                                  "America", "Europe/London\x00", "a" * 300])
def test_a_name_no_zone_has_falls_back(name):
    fallback = ZoneInfo("Asia/Tokyo")
    assert zone_named(name, fallback) is fallback


def test_a_zone_by_name():
    assert zone_named("Europe/London", UTC_ZONE) == ZoneInfo("Europe/London")


def test_throttled_positions_take_whole_minutes():
    start = at("2026-06-01T10:00:30Z")
    assert [moments.throttled(start, k, 60) for k in (0, 59, 60, 119, 120)] == \
        [start, start, start + MINUTE, start + MINUTE, start + 2 * MINUTE]


class Table:
    """``throttle_moments`` as a dict, read by range as the database is."""

    def __init__(self):
        self.rows: dict[datetime, int] = {}
        self.reads = 0

    def load(self, first, last):
        self.reads += 1
        return {moment: count for moment, count in self.rows.items() if first <= moment <= last}

    def keep(self, throttle):
        self.rows.update(throttle.placed)


def no_minute_over(moments_written, per_minute):
    """No 60-second window holds more than ``per_minute`` of the moments."""
    ordered = sorted(moments_written)
    return all(ordered[index + per_minute] - ordered[index] >= MINUTE
               for index in range(len(ordered) - per_minute))


@settings(max_examples=40, deadline=None)
@given(per_minute=st.integers(1, 7),
       chunks=st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=60), min_size=1,
                       max_size=5))
def test_no_minute_gets_more_than_the_throttle_across_chunks(per_minute, chunks):
    """Chunks of local moments (minutes after a start, all on the same second), each
    placed by its own Throttle reading what the chunks before it kept."""
    start = at("2026-06-01T10:00:15Z")
    table, written, pairs = Table(), [], []
    for chunk in chunks:
        throttle = Throttle(per_minute, table.load)
        wanted = [start + MINUTE * offset for offset in chunk]
        placed = throttle.place_all(wanted)
        table.keep(throttle)
        written += placed
        pairs += zip(wanted, placed, strict=True)
    assert no_minute_over(written, per_minute)
    counts = {moment: written.count(moment) for moment in written}
    for want, moment in pairs:  # a whole number of minutes later, past full minutes only
        assert moment >= want and (moment - want) % MINUTE == timedelta(0)
        assert all(counts.get(want + MINUTE * skipped) == per_minute
                   for skipped in range((moment - want) // MINUTE))


def test_a_throttle_fills_each_minute_then_moves_on():
    table = Table()
    start = at("2026-06-01T10:00Z")
    first = Throttle(3, table.load)
    assert first.place_all([start] * 4 + [start + 2 * MINUTE]) == \
        [start, start, start, start + MINUTE, start + 2 * MINUTE]
    table.keep(first)
    second = Throttle(3, table.load)  # the next chunk, another worker's
    assert second.place_all([start] * 6) == \
        [start + MINUTE, start + MINUTE, start + 2 * MINUTE, start + 2 * MINUTE,
         start + 3 * MINUTE, start + 3 * MINUTE]


def test_a_long_run_of_full_minutes_is_read_a_window_at_a_time():
    table = Table()
    start = at("2026-06-01T10:00Z")
    table.rows = {start + MINUTE * index: 2 for index in range(3000)}  # two days full
    throttle = Throttle(2, table.load)
    assert throttle.place_all([start]) == [start + MINUTE * 3000]
    assert table.reads <= 4
