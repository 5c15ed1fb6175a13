"""The queue-wide gauges come from one replica at a time: the holder of queue.maintenance_leader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from worker import maintenance
from worker.db import open_pool
from worker.metrics import Metrics
from worker.queue import QueueClient

LEASE = 1          # seconds: short, so that a takeover fits in a test


class Replica:
    """One worker's view: its queue client (own worker id) and its metrics."""

    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue
        self.metrics = Metrics()

    async def collect(self) -> bool:
        """Run the gauge job once; True when this replica exported the queue gauges."""
        return await maintenance.collect_queue_metrics(self.queue, self.metrics, lease_seconds=LEASE) is not None

    def exports(self) -> bool:
        text = self.metrics.render().decode()
        exported = 'tenkaigen_queue_jobs{status="queued"}' in text
        assert exported == ("tenkaigen_queue_metrics_leader 1.0" in text), "the leader gauge tells the truth"
        return exported


@pytest.fixture
async def replicas(database: str) -> AsyncIterator[Callable[[str], Replica]]:
    """`replicas(worker_id)`: a replica on the test database (they share one pool; ids are what matter)."""
    pool = await open_pool(database, min_size=1, max_size=3)
    yield lambda worker_id: Replica(QueueClient(pool, worker_id, lease_seconds=30))
    await pool.close()


async def test_exactly_one_replica_exports_the_queue_gauges(replicas, make_job) -> None:
    make_job("one")
    make_job("two")
    first, second, third = replicas("host-a:1:aaaaaa"), replicas("host-b:2:bbbbbb"), replicas("host-c:3:cccccc")
    results = await asyncio.gather(first.collect(), second.collect(), third.collect())
    assert sorted(results) == [False, False, True], "one replica leads"
    assert [r.exports() for r in (first, second, third)] == results
    leader = (first, second, third)[results.index(True)]
    assert 'tenkaigen_queue_jobs{status="queued"} 2.0' in leader.metrics.render().decode()
    for _ in range(3):                                                   # renewals keep the same leader
        assert await asyncio.gather(first.collect(), second.collect(), third.collect()) == results


async def test_another_replica_takes_over_within_the_lease_when_the_leader_stops(replicas, make_job,
                                                                                 admin: psycopg.Connection) -> None:
    make_job("waiting")
    leader, follower = replicas("host-a:1:aaaaaa"), replicas("host-b:2:bbbbbb")
    assert await leader.collect() and not await follower.collect()
    stopped_at = time.monotonic()                   # the leader is killed: it never renews again
    deadline = stopped_at + LEASE + 2.0
    while not await follower.collect():
        assert time.monotonic() < deadline, "the follower did not take over within the lease"
        assert not follower.exports()
        await asyncio.sleep(0.05)
    took = time.monotonic() - stopped_at
    assert took <= LEASE + 2.0
    assert follower.exports()
    assert not leader.exports(), "the old leader stopped exporting when its own lease ran out"
    row = admin.execute("select worker_id from queue.maintenance_leader").fetchone()
    assert row == ("host-b:2:bbbbbb",)


async def test_a_stopping_leader_hands_over_at_once(replicas, make_job) -> None:
    make_job("waiting")
    leader, follower = replicas("host-a:1:aaaaaa"), replicas("host-b:2:bbbbbb")
    assert await leader.collect() and not await follower.collect()
    assert await maintenance.resign_queue_metrics(leader.queue, leader.metrics)
    assert not leader.exports()
    assert await follower.collect(), "the next gauge run of another replica leads, without waiting for the lease"
    assert not await maintenance.resign_queue_metrics(leader.queue, leader.metrics), "only a leader resigns"
