"""The mutex kept in the database (``curation.curator._lock``), on this test run's MongoDB."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from curation.errors import DataError

pytest.importorskip("fiftyone")


@pytest.fixture
def locks():  # noqa: ANN201 - the lock module, connected
    from curation.curator import _lock
    from curation.curator._fo import fiftyone

    fiftyone()
    return _lock


def test_one_holder_at_a_time(locks) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def work(i: int) -> None:
        for _ in range(3):
            with locks.database_lock("test:mutex", f"worker {i}"):
                inside.append(i)
                if len(inside) > 1:
                    overlaps.append(i)
                time.sleep(0.01)
                inside.remove(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []
    assert locks._collection().find_one({"_id": "test:mutex"}) is None  # released


def test_a_dead_holders_lock_is_taken_over_once_expired(locks) -> None:
    past = datetime.datetime(2000, 1, 1)
    locks._collection().replace_one(
        {"_id": "test:dead"},
        {"owner": "gone", "what": "curate ingest x", "host": "h", "pid": 1, "expires": past},
        upsert=True,
    )
    with locks.database_lock("test:dead", "me", wait=5) as held:
        doc = locks._collection().find_one({"_id": "test:dead"})
        assert doc["owner"] == held.owner and doc["expires"] > past


def test_a_live_holder_makes_the_next_wait_then_fail_naming_it(locks) -> None:
    held_by = r"stayed locked .* by curate ingest raw/a \(host "
    with (
        locks.database_lock("test:busy", "curate ingest raw/a"),
        pytest.raises(DataError, match=held_by),
        locks.database_lock("test:busy", "other", wait=0.3),
    ):
        pass


def test_a_lost_lock_is_noticed_before_commit(locks) -> None:
    with locks.database_lock("test:lost", "me", lease=0.4) as held:
        locks._collection().update_one({"_id": "test:lost"}, {"$set": {"owner": "thief"}})
        deadline = time.monotonic() + 30
        while not held.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(DataError, match="lost the database lock 'test:lost'"):
            held.check()
    # the thief's lock is not ours to release
    assert locks._collection().find_one({"_id": "test:lost"})["owner"] == "thief"
    locks._collection().delete_one({"_id": "test:lost"})
