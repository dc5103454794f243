"""A mutex kept in the MongoDB database itself, for writers on different machines.

A team's members run ``curate ingest`` from their own machines against one
server, so a lock file cannot serialise them. The lock is one document in the
``curate_locks`` collection of FiftyOne's database: taking it is an atomic
upsert on its ``_id`` (a second taker gets a duplicate-key error), its
``expires`` time comes from the server's clock (no clock skew between
machines), a holder renews it every few seconds, and a holder that died (kill
-9, a lost network) loses it when ``expires`` passes. A holder on this machine
whose process is gone is known dead at once: each lock names its holder's
machine (boot id and process namespace, not the host name, which two machines
can share) and process id.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.curator.database import connection_lost
from curation.errors import DataError

COLLECTION = "curate_locks"
#: A holder that has not renewed its lock for this long is taken to be dead.
LEASE_SECONDS = 30.0
#: How long a writer waits for another one before it gives up with a clear error.
WAIT_SECONDS = 900.0


@dataclass
class DatabaseLock:
    """A held lock: ``check()`` raises if it was lost (renewal failed, lease taken over)."""

    key: str
    owner: str
    lost: list[str] = field(default_factory=list)
    #: The server became unreachable while renewing (pymongo's ``ConnectionFailure``).
    unreachable: list[BaseException] = field(default_factory=list)

    def check(self) -> None:
        if self.unreachable:  # the server went away: said as such where errors are shown
            raise self.unreachable[0]
        if self.lost:
            raise DataError(
                f"lost the database lock {self.key!r} ({self.lost[0]}); nothing was "
                "committed. Fix: run the command again (check the network to the server)."
            )


def _collection() -> Any:
    import fiftyone.core.odm.database as fod

    return fod.get_db_conn()[COLLECTION]


def _set(owner: str, lease: float, what: str) -> list[dict[str, Any]]:
    return [
        {
            "$set": {
                "owner": owner,
                "what": what,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "machine": this_machine(),
                "since": {"$ifNull": ["$since", "$$NOW"]},
                "expires": {"$add": ["$$NOW", int(lease * 1000)]},
            }
        }
    ]


@functools.cache
def this_machine() -> str | None:
    """This machine and process namespace (Linux), so a lock's process id can be looked up here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


def holder_gone(doc: dict[str, Any]) -> bool:
    """Whether the process holding the lock ``doc`` ran on this machine and has ended."""
    machine, pid = doc.get("machine"), doc.get("pid")
    if machine is None or machine != this_machine() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


def _stale(doc: dict[str, Any] | None) -> dict[str, Any]:
    """A filter matching the lock ``doc`` only while its holder is dead: its lease ran out
    (the server's clock), or its process on this machine has ended."""
    expired = {"$expr": {"$lt": ["$expires", "$$NOW"]}}
    if doc is not None and holder_gone(doc):
        return {"$or": [expired, {"owner": doc.get("owner")}]}
    return expired


def _try_take(coll: Any, key: str, owner: str, lease: float, what: str) -> bool:
    from pymongo.errors import DuplicateKeyError

    try:  # free (no document): inserted; ours already: renewed
        coll.update_one({"_id": key, "owner": owner}, _set(owner, lease, what), upsert=True)
        return True
    except DuplicateKeyError:
        pass
    # held by another owner: take it over only if that owner is dead
    taken = coll.update_one(
        {"_id": key, **_stale(coll.find_one({"_id": key}))},
        [{"$unset": "since"}, *_set(owner, lease, what)],
    )
    return taken.matched_count == 1


@contextlib.contextmanager
def dead_holder(owner: str, what: str) -> Iterator[bool]:
    """Whether the lock holder ``owner`` is dead; while True, its lock (if any) is held here.

    Taking the lock over first means a holder that was only slow (its lease ran out
    but it lives) finds its lock lost at its next renewal, and commits nothing.
    """
    coll = _collection()
    doc = coll.find_one({"owner": owner})
    if doc is None:  # released or taken over: its holder has let go of what it made
        yield True
        return
    mine = uuid.uuid4().hex
    taken = coll.update_one(
        {"_id": doc["_id"], "owner": owner, **_stale(doc)},
        [{"$unset": "since"}, *_set(mine, LEASE_SECONDS, what)],
    )
    if taken.matched_count != 1:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(Exception):
            coll.delete_one({"_id": doc["_id"], "owner": mine})


@contextlib.contextmanager
def database_lock(
    key: str, what: str, lease: float = LEASE_SECONDS, wait: float = WAIT_SECONDS
) -> Iterator[DatabaseLock]:
    """Hold the lock ``key`` (e.g. ``dataset:falls``) in the database while the block runs.

    Waits (polling) while another process holds it; raises ``DataError`` naming the
    holder after ``wait`` seconds.
    """
    coll = _collection()
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    pause = 0.05
    while not _try_take(coll, key, owner, lease, what):
        if time.monotonic() > deadline:
            holder = coll.find_one({"_id": key}) or {}
            raise DataError(
                f"{key!r} stayed locked for {wait:.0f} s by {holder.get('what', '?')} "
                f"(host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since "
                f"{holder.get('since', '?')} UTC). Fix: wait for it to finish and run again; "
                f"a holder that died frees it within {lease:.0f} s."
            )
        time.sleep(pause * (1 + random.random()))
        pause = min(pause * 2, 1.0)
    lock = DatabaseLock(key, owner)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease / 4):
            try:
                done = coll.update_one({"_id": key, "owner": owner}, _set(owner, lease, what))
            except Exception as exc:  # noqa: BLE001 - reported through lock.check()
                lock.lost.append(f"renewal failed: {type(exc).__name__}")
                if connection_lost(exc):
                    lock.unreachable.append(exc)
                return
            if done.matched_count != 1:
                lock.lost.append("another process took it over after the lease ran out")
                return

    thread = threading.Thread(target=renew, name=f"curate-lock-{key}", daemon=True)
    thread.start()
    try:
        yield lock
    finally:
        stop.set()
        # a renewal in flight may wait out the server's timeout; releasing beside it is
        # safe (a renewal never re-creates a released lock)
        thread.join(timeout=1.0)
        # with the server gone, releasing would wait out its timeout again for nothing:
        # the lease runs out, and a holder found dead on its machine is taken over at once
        if not lock.unreachable and not connection_lost(sys.exc_info()[1]):
            with contextlib.suppress(Exception):
                coll.delete_one({"_id": key, "owner": owner})


def dataset_lock_key(name: str) -> str:
    """One lock per FiftyOne URL name, so ``my falls`` and ``my-falls`` are one dataset here."""
    from fiftyone.core.utils import to_slug

    return f"dataset:{to_slug(name)}"
