"""Registry leases on SQLite and PostgreSQL: one holder per name, taken over only once expired, released
only by its holder, and exclusive when many threads with their own connections ask at once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from etl_project.registry.db import Database
from etl_project.registry.leases import LeaseBusy, Leases

SHORT = dt.timedelta(seconds=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def leases(request, tmp_path) -> Leases:
    if request.param == "sqlite":
        return Leases(Database(f"sqlite:///{tmp_path / 'registry.sqlite'}"))
    return Leases(Database(request.getfixturevalue("pg_url")))


def test_one_holder_until_released_or_expired(leases):
    first = leases.acquire("launch:x", SHORT)
    assert first is not None
    assert leases.acquire("launch:x", SHORT) is None  # held
    assert leases.acquire("launch:y", SHORT) is not None  # another name is another lease
    leases.release("launch:x", "not-the-holder")
    assert leases.acquire("launch:x", SHORT) is None  # only the holder releases it
    leases.release("launch:x", first)
    crashed = leases.acquire("launch:x", dt.timedelta(seconds=-1))  # a holder whose lease already ended
    assert crashed is not None
    assert leases.acquire("launch:x", SHORT) not in (None, crashed)  # taken over


def test_held_waits_then_gives_up_in_one_sentence(leases):
    assert leases.acquire("launch:z", SHORT) is not None
    with (
        pytest.raises(LeaseBusy, match="busy in another process"),
        leases.held("launch:z", wait=dt.timedelta(0)),
    ):
        pass


def test_many_threads_asking_at_once_never_hold_it_together(leases):
    """A read-modify-write with a registry round trip in between loses no update only if it is exclusive."""
    counter, errors = [0], []
    rounds, workers = 5, 8

    def work(n: int) -> None:
        try:
            for i in range(rounds):
                with leases.held("launch:n"):
                    seen = counter[0]
                    assert leases.acquire(f"other:{n}:{i}", SHORT) is not None  # a round trip meanwhile
                    counter[0] = seen + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and counter[0] == rounds * workers
