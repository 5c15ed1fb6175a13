"""Database connections: the work pool and the dedicated LISTEN connection.

The pool (psycopg_pool.AsyncConnectionPool, autocommit) carries every queue call; each call is one statement and
commits at once, so no transaction stays open across a generation. Broken connections (a database restart) are
discarded by the pool when returned and replaced in the background; callers retry.

The claim loop owns one connection outside the pool (`DedicatedConnection`): it runs one claim at a time, and a
claim woken by a NOTIFY should not pay for a pool checkout on the way to the server.

The listener owns one connection outside the pool. It LISTENs to the wake-up channels, reconnects with
exponential backoff (re-LISTENing every time), sends a keepalive query when idle, and reports each (re)connect so
the runner can poll at once for anything it missed. NOTIFY is a hint only: the runner always polls too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from worker.config_checks import check_database_url
from worker.exceptions import ConfigurationError
from worker.logging import logger

QUEUED_CHANNEL = "generation_jobs_queued"
CANCEL_CHANNEL = "generation_jobs_cancel"
KEEPALIVE_INTERVAL_DEFAULT = 30.0
RECONNECT_BACKOFF_MIN = 0.1
RECONNECT_BACKOFF_MAX = 10.0
CONNECT_TIMEOUT_DEFAULT = 10

log = logger("db")


def connection_kwargs(dsn: str, *, application_name: str = "tenkaigen-worker") -> dict[str, Any]:
    """psycopg connect() keyword arguments for a worker connection (autocommit; no prepared statements behind
    a Supabase pooler)."""
    problems = check_database_url(dsn)
    if problems:
        raise ConfigurationError(problems[0])
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": CONNECT_TIMEOUT_DEFAULT,
        # TCP keepalives: a half-open socket (NAT, pooler restart) is noticed within about a minute
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if "pooler.supabase.com" in dsn:
        kwargs["prepare_threshold"] = None
    return kwargs


async def open_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    connect_within: float = 10.0,
    application_name: str = "tenkaigen-worker",
) -> AsyncConnectionPool:
    """An open pool of autocommit connections; a clear ConfigurationError if the database cannot be reached."""
    kwargs = connection_kwargs(dsn, application_name=application_name)
    try:                               # one direct attempt first: a refused or rejected login fails at once
        probe = await psycopg.AsyncConnection.connect(dsn, **kwargs)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(
            f"cannot connect to the database ({describe_connect_error(exc)}). Check DATABASE_URL (host, port, "
            "user, password, database) and that the server accepts connections.") from None
    await probe.close()
    pool = AsyncConnectionPool(
        dsn,
        kwargs=kwargs,
        min_size=min_size,
        max_size=max(max_size, min_size),
        open=False,
        name="tenkaigen",
        timeout=30.0,
        reconnect_timeout=24 * 3600.0,     # keep trying while the database is down; callers retry meanwhile
    )
    try:
        await pool.open(wait=True, timeout=connect_within)
    except Exception as exc:
        await pool.close()
        raise ConfigurationError(
            f"cannot connect to the database within {connect_within:.0f} s ({describe_connect_error(exc)}). "
            "Check DATABASE_URL (host, port, user, password, database) and that the server accepts connections."
        ) from None
    return pool


def describe_connect_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class DedicatedConnection:
    """One autocommit connection for one caller that runs one statement at a time (the claim loop).

    Opened on first use; closed after a call that leaves it broken or mid-statement (a restart, a cancelled call),
    and opened again by the next call, so callers only have to retry.
    """

    def __init__(self, dsn: str, *, application_name: str) -> None:
        self._dsn = dsn
        self._kwargs = connection_kwargs(dsn, application_name=application_name)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = None
            self._conn = await psycopg.AsyncConnection.connect(self._dsn, **self._kwargs)
        conn = self._conn
        try:
            yield conn
        except BaseException:
            if conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class Listener:
    """A dedicated LISTEN connection that survives database restarts.

    `on_notify(channel, payload)` runs for every notification; `on_connect()` after every (re)connect (the runner
    polls then, since notifications sent while disconnected are lost).
    """

    def __init__(
        self,
        dsn: str,
        channels: Iterable[str],
        on_notify: Callable[[str, str], None],
        *,
        on_connect: Callable[[], None] | None = None,
        keepalive_interval: float = KEEPALIVE_INTERVAL_DEFAULT,
        application_name: str = "tenkaigen-listener",
    ) -> None:
        self._dsn = dsn
        self._channels = list(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._keepalive_interval = keepalive_interval
        self._kwargs = connection_kwargs(dsn, application_name=application_name)
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def run(self) -> None:
        """Listen until cancelled, reconnecting forever with backoff."""
        failures = 0
        while True:
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, **self._kwargs)
                for channel in self._channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if failures or self.reconnects:
                    log.info("listener reconnected", extra={"action": "listen", "count": failures})
                failures = 0
                self.connected.set()
                if self._on_connect is not None:
                    self._on_connect()
                while True:
                    async for notify in conn.notifies(timeout=self._keepalive_interval):
                        self._on_notify(notify.channel, notify.payload)
                        await asyncio.sleep(0)      # let a woken claim loop send its claim before we re-arm
                    await conn.execute("select 1")       # keepalive: noticed by the server and by us
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                failures += 1
                self.reconnects += 1
                delay = min(RECONNECT_BACKOFF_MAX, RECONNECT_BACKOFF_MIN * 2 ** (failures - 1))
                delay *= 0.5 + random.random()
                log.warning("listener disconnected, reconnecting in %.1f s: %s", delay, describe_connect_error(exc),
                            extra={"action": "listen", "count": failures})
                await asyncio.sleep(delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
