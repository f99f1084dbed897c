"""Per-chat turn serialization: in-process on SQLite, across replicas on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chatserver.config import Settings
from chatserver.errors import ChatBusy, DatabaseUnavailable
from chatserver.storage.protocols import ChatLocks
from chatserver.storage.sql.driver_errors import is_connection_error, unavailable_on_connection_errors

_BUSY = "chat is busy with another turn"
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.1

# Sent to the driver directly: two of these run per turn, and SQLAlchemy's execution machinery
# costs several times what the driver does for a one-value query (the connection is detached and in
# autocommit, so SQLAlchemy has no transaction or pool state to keep in step).
_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
_UNLOCK = "SELECT pg_advisory_unlock($1)"


def advisory_key(chat_id: str) -> int:
    """The chat's PostgreSQL advisory lock key: a signed 64-bit hash, identical on every replica."""
    digest = hashlib.blake2b(chat_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Slot:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class LocalChatLocks:
    """One asyncio lock per chat, dropped when nobody holds or awaits it, so memory stays bounded."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._slots: dict[str, _Slot] = {}

    @asynccontextmanager
    async def hold(self, chat_id: str, *, wait: bool) -> AsyncIterator[None]:
        # A slot exists while someone holds the lock or queues for it: either way, busy.
        if not wait and chat_id in self._slots:
            raise ChatBusy(_BUSY)
        slot = self._slots.setdefault(chat_id, _Slot())
        slot.users += 1
        try:
            await self._acquire(slot.lock)
            try:
                yield
            finally:
                slot.lock.release()
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[chat_id]

    async def close(self) -> None:
        """Nothing outlives the process."""

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await lock.acquire()
        except TimeoutError:
            raise ChatBusy(_BUSY) from None


class _AdvisorySession:
    """The one connection that owns this process's advisory locks.

    Session-level locks belong to a connection, so it is detached from the request pool (no request
    ever inherits a lock, and holding locks costs no pool slot). It runs in AUTOCOMMIT and one query
    at a time. If it is lost the server has released its locks; the next query reconnects.

    A turn waits for its query's turn in order, as long as the connection makes progress: under load
    many turns queue here, each served in a few milliseconds. When no query has finished for
    ``wait_seconds`` (the database timeout), the connection has stalled: turns fail (503) instead of
    queueing behind it for as long as it lasts.
    """

    def __init__(self, engine: AsyncEngine, wait_seconds: float = 5.0) -> None:
        self._engine = engine
        self._wait_seconds = wait_seconds
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        """The asyncpg connection under ``_conn``."""
        self._guard = asyncio.Lock()
        self._progress = 0.0
        """Loop time the guard last changed hands: a query finished, or one started."""
        self._queued = 0
        """Callers waiting for the guard: none, and a free guard is taken without queueing."""
        self._closed = False
        self._cleanups: set[asyncio.Task[None]] = set()

    async def try_lock(self, key: int) -> bool:
        attempt = asyncio.ensure_future(self._try_lock(key))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # The query runs on; should it take the lock, give it back or the chat stays locked.
            attempt.add_done_callback(lambda done: self._unlock_if_taken(key, done))
            raise

    async def unlock(self, key: int) -> None:
        async with self._queue(patient=True):
            if self._closed or self._conn is None:
                return
            try:
                await self._driver_connection().fetchval(_UNLOCK, key)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                await self._discard(lost=True)  # the lost session released the lock already

    async def close(self) -> None:
        async with self._guard:
            self._closed = True
            await self._discard()

    async def _try_lock(self, key: int) -> bool:
        async with self._queue():
            if self._closed:
                raise DatabaseUnavailable("chat locks are closed")
            try:
                return await self._query_lock(key)
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                await self._discard(lost=True)
            # The connection was lost (e.g. a server restart): one retry on a fresh one, which is
            # dropped in turn if it fails, or every later turn would meet a dead connection.
            try:
                with unavailable_on_connection_errors(connecting=True):
                    return await self._query_lock(key)
            except DatabaseUnavailable:
                await self._discard(lost=True)
                raise

    @asynccontextmanager
    async def _queue(self, *, patient: bool = False) -> AsyncIterator[None]:
        """The guard, first come first served; impatient waiters give up once the connection stalls."""
        if not self._guard.locked() and not self._queued:
            await self._guard.acquire()  # free and nobody waiting: taken at once, no task, no timer
        else:
            self._queued += 1
            try:
                await (self._guard.acquire() if patient else self._wait_while_progressing())
            finally:
                self._queued -= 1
        loop = asyncio.get_running_loop()
        self._progress = loop.time()
        try:
            yield
        finally:
            self._progress = loop.time()
            self._guard.release()

    async def _wait_while_progressing(self) -> None:
        loop = asyncio.get_running_loop()
        # A task keeps this waiter's place in the guard's queue while the stall check wakes up.
        turn = asyncio.ensure_future(self._guard.acquire())
        try:
            while not turn.done():
                stalled_at = self._progress + self._wait_seconds
                await asyncio.wait([turn], timeout=max(stalled_at - loop.time(), 0.0))
                if not turn.done() and loop.time() >= self._progress + self._wait_seconds:
                    raise DatabaseUnavailable("database unavailable: chat locks are not answering")
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._guard.release()  # taken just as this waiter gave up: hand it on
            else:
                turn.cancel()
            raise

    async def _query_lock(self, key: int) -> bool:
        await self._connect()
        return bool(await self._driver_connection().fetchval(_TRY_LOCK, key))

    async def _connect(self) -> None:
        if self._conn is None:
            conn = await self._engine.connect()
            try:
                await conn.run_sync(_detach_in_autocommit)
                # The pool record that names the driver connection went with the detach.
                adapted = (await conn.get_raw_connection()).dbapi_connection
                self._driver = getattr(adapted, "driver_connection", None)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn

    def _driver_connection(self) -> Any:
        if self._driver is None:
            raise RuntimeError("the lock connection is not open")
        return self._driver

    async def _discard(self, *, lost: bool = False) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if conn is not None:
            # close(), not invalidate(): a detached connection has no pool record to close it through,
            # so invalidating would drop the driver connection unclosed. close() terminates it.
            with contextlib.suppress(Exception):
                if lost:
                    # A polite close waits for the server, which a stalled connection never answers:
                    # the driver drops a lost one at once.
                    _terminate(driver)
                await conn.close()

    def _unlock_if_taken(self, key: int, attempt: asyncio.Future[bool]) -> None:
        if attempt.cancelled() or attempt.exception() is not None or not attempt.result():
            return
        cleanup = asyncio.ensure_future(self.unlock(key))
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)


def _terminate(driver: Any) -> None:
    terminate = getattr(driver, "terminate", None)  # asyncpg's; other drivers close
    if callable(terminate):
        terminate()


def _detach_in_autocommit(conn: Connection) -> None:
    """Take the connection out of the pool for good, then switch the driver to autocommit.

    Set on the DBAPI connection directly: ``execution_options(isolation_level=...)`` would register
    a reset on the pool's record, which after the detach belongs to some other future connection.
    """
    conn.detach()
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:
        raise RuntimeError("the lock connection was invalidated while being set up")
    conn.dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")


class PostgresChatLocks:
    """An in-process lock per chat (local waiters queue without polling), then an advisory lock.

    Waiting on another replica polls ``pg_try_advisory_lock`` with capped exponential backoff: a
    blocking ``pg_advisory_lock`` would tie up the shared lock connection for every other chat.
    """

    def __init__(self, engine: AsyncEngine, timeout_seconds: float, db_timeout_seconds: float = 5.0) -> None:
        self._timeout = timeout_seconds
        self._local = LocalChatLocks(timeout_seconds)
        self._session = _AdvisorySession(engine, db_timeout_seconds)

    @asynccontextmanager
    async def hold(self, chat_id: str, *, wait: bool) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + self._timeout
        key = advisory_key(chat_id)
        async with self._local.hold(chat_id, wait=wait):
            await self._acquire(key, wait=wait, deadline=deadline)
            try:
                yield
            finally:
                # Shielded: a cancelled turn must still give the chat back.
                await asyncio.shield(self._session.unlock(key))

    async def close(self) -> None:
        """Closes the lock connection, which releases every advisory lock this process holds."""
        await self._session.close()

    async def _acquire(self, key: int, *, wait: bool, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        delay = _FIRST_POLL_SECONDS
        while not await self._session.try_lock(key):
            remaining = deadline - loop.time()
            if not wait or remaining <= 0:
                raise ChatBusy(_BUSY)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_POLL_SECONDS)


def make_chat_locks(engine: AsyncEngine, settings: Settings) -> ChatLocks:
    if engine.dialect.name == "postgresql":
        return PostgresChatLocks(engine, settings.chat_lock_timeout_seconds, settings.db_timeout_seconds)
    return LocalChatLocks(settings.chat_lock_timeout_seconds)
