"""LocalCluster: the throwaway PostgreSQL the tests, the benchmark, chaos runs and `tenkaigen dev` start."""

from __future__ import annotations

import psycopg
import pytest

from worker.exceptions import ConfigurationError
from worker.pgcluster import LocalCluster


def test_a_first_start_moves_to_another_port_when_its_port_was_taken_meanwhile() -> None:
    first = LocalCluster.temporary().start()
    second = LocalCluster.temporary()
    second.port = first.port                 # what the free_port() race produces: the port is gone at bind time
    try:
        second.start()
        assert second.port != first.port
        with psycopg.connect(second.dsn) as conn:
            assert conn.execute("show data_directory").fetchone()[0] == str(second.data_dir)
        with psycopg.connect(first.dsn) as conn:
            assert conn.execute("show data_directory").fetchone()[0] == str(first.data_dir)
    finally:
        second.destroy()
        first.destroy()


def test_a_restart_keeps_its_port_and_says_so_when_it_is_taken() -> None:
    cluster = LocalCluster.temporary().start()
    squatter = LocalCluster.temporary()
    try:
        cluster.stop("fast")
        squatter.port = cluster.port
        squatter.start()                     # another cluster takes the port while ours is down
        assert squatter.port == cluster.port
        with pytest.raises(ConfigurationError, match="pg_ctl failed"):
            cluster.start()                  # clients hold DSNs with the old port: never move on a restart
    finally:
        squatter.destroy()
        cluster.destroy()
