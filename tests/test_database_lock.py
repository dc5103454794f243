"""The mutex kept in the database (``curation.curator._lock``), on this test run's MongoDB."""

from __future__ import annotations

import datetime
import subprocess
import sys
import threading
import time
import uuid

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


def _ended_pid() -> int:
    """The id of a process of this machine that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


def _held(locks, key: str, owner: str, machine: str | None, pid: int, seconds: float) -> None:
    """A lock document as a holder writes it, its lease ending ``seconds`` from now."""
    locks._collection().replace_one(
        {"_id": key},
        {
            "owner": owner,
            "what": "curate ingest x",
            "host": "h",
            "pid": pid,
            "machine": machine,
            "expires": datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            + datetime.timedelta(seconds=seconds),
        },
        upsert=True,
    )


def test_a_holder_that_ended_on_this_machine_is_taken_over_at_once(locks) -> None:
    """Its lease has a minute left; the process it names on this machine is gone."""
    _held(locks, "test:ended", "gone", locks.this_machine(), _ended_pid(), seconds=60)
    with locks.database_lock("test:ended", "me", wait=0.5) as held:
        assert locks._collection().find_one({"_id": "test:ended"})["owner"] == held.owner


def test_a_holder_on_another_machine_keeps_its_lease(locks) -> None:
    """A process id means nothing on another machine, even one with the same host name."""
    _held(locks, "test:elsewhere", "there", "another-machine", _ended_pid(), seconds=60)
    with (
        pytest.raises(DataError, match="stayed locked"),
        locks.database_lock("test:elsewhere", "me", wait=0.3),
    ):
        pass
    locks._collection().delete_one({"_id": "test:elsewhere"})


# the temporary datasets of new ingests: kept while their ingest lives, removed once it died


def test_partial_datasets_of_dead_ingests_are_removed_and_live_ones_kept(locks) -> None:
    import fiftyone as fo

    from curation.curator._fo import PARTIAL_PREFIX, partial_dataset_name, remove_dead_partials

    def partial(owner: str) -> str:
        name = f"{PARTIAL_PREFIX}{owner}-{uuid.uuid4().hex[:8]}"
        fo.Dataset(name)
        return name

    tag = uuid.uuid4().hex[:6]
    elsewhere = f"elsewhere{tag}"  # a holder on another machine, its lease running
    _held(locks, f"test:a{tag}", elsewhere, "another-machine", 1, seconds=60)
    ended = f"ended{tag}"  # a holder of this machine whose process is gone
    _held(locks, f"test:b{tag}", ended, locks.this_machine(), _ended_pid(), seconds=60)
    expired = f"expired{tag}"  # a holder elsewhere whose lease ran out
    _held(locks, f"test:c{tag}", expired, "another-machine", 1, seconds=-1)
    names = {o: partial(o) for o in (elsewhere, ended, expired, f"released{tag}")}
    with locks.database_lock(f"test:d{tag}", "a live ingest here") as live:
        names["live"] = partial_dataset_name(live)
        fo.Dataset(names["live"])
        removed = remove_dead_partials(fo)
        left = set(fo.list_datasets(glob_patt=f"{PARTIAL_PREFIX}*"))
        assert live.lost == []
    assert set(removed) == {names[ended], names[expired], names[f"released{tag}"]}
    assert names[elsewhere] in left and names["live"] in left
    assert not left & set(removed)
    # the dead holders' locks are free now; the live one's is not touched
    held = {d["_id"] for d in locks._collection().find({"_id": {"$regex": f"^test:.{tag}$"}})}
    assert held == {f"test:a{tag}"}
    for name in (names[elsewhere], names["live"]):
        fo.delete_dataset(name)
    locks._collection().delete_one({"_id": f"test:a{tag}"})
