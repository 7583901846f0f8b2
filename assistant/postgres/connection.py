"""Reaching a PostgreSQL database: the URL (`--store postgresql://…` or FAQ_DATABASE_URL), a connection
pool, pgvector, and errors that say which of these failed and what to run. The URL's password never
appears in a message."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, urlencode

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool

from assistant.errors import InputError

URL_ENV = "FAQ_DATABASE_URL"
SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 5
POOL_MAX = 8


class DatabaseError(InputError):
    """The database cannot serve: unreachable, without pgvector, or without a published build. Exit code 2."""


class DatabaseUnreachableError(DatabaseError):
    pass


class PgvectorMissingError(DatabaseError):
    pass


class NoPublishedBuildError(DatabaseError):
    pass


def is_database_url(spec: str | None) -> bool:
    return bool(spec) and spec.strip().lower().startswith(SCHEMES)


def database_url(store: str | None = None) -> str | None:
    """The database a command uses: `--store` when it names one, else FAQ_DATABASE_URL; None means the
    embedded store (index files and SQLite)."""
    if store and store.strip():
        if is_database_url(store):
            return store.strip()
        if "://" in store or re.match(r"\s*\w+\s*=", store):  # another scheme, or a key=value conninfo
            raise DatabaseError(f"--store {describe(store)} is not a PostgreSQL URL: "
                                "give postgresql://user:password@host:port/database, or a directory")
        return None
    env = os.environ.get(URL_ENV, "").strip()
    if env and not is_database_url(env):
        raise DatabaseError(f"{URL_ENV} is not a PostgreSQL URL: give postgresql://user:password@host:port/database")
    return env or None


def url_with(url: str, **changes: str) -> str:
    """The same URL with some connection parameters changed (dbname, user, …), still a postgresql:// URL."""
    parts = {**conninfo.conninfo_to_dict(url), **changes}
    host = parts.pop("host", "")
    port = parts.pop("port", "")
    user = parts.pop("user", "")
    password = parts.pop("password", "")
    dbname = parts.pop("dbname", "")
    query = dict(parts)
    netloc = ""
    if user:
        netloc = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
    if host and not host.startswith("/"):
        netloc += host + (f":{port}" if port else "")
    else:
        if host:
            query["host"] = host
        if port:
            query["port"] = port
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{urlencode(query)}" if query else "")


def describe(url: str) -> str:
    """user@host:port/database, without the password: what messages name."""
    if not is_database_url(url):
        return f"'{url.split('://')[0]}://…'" if "://" in url else "the store option"
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL (malformed)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    where = f"{host}:{port}" if not host.startswith("/") else f"socket {host}"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"PostgreSQL {user}{where}/{parts.get('dbname') or parts.get('user') or 'postgres'}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_reachable(url: str) -> None:
    """One direct connection, so an unreachable database is a message rather than a pool timeout."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S):
            pass
    except (psycopg.Error, ValueError) as exc:
        raise DatabaseUnreachableError(
            f"cannot reach {describe(url)} ({_first_line(exc)}): check the URL (--store or {URL_ENV}), "
            "that the server runs and that it accepts connections from this machine"
        ) from None


def open_pool(url: str, max_size: int = POOL_MAX, configure=None) -> ConnectionPool:
    """A pool of connections (autocommit unless a block opens a transaction); checks reachability first.
    `configure(conn)` runs on each new connection (session settings)."""
    check_reachable(url)
    pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, name="faq", configure=configure,
                          kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    return pool


def ensure_pgvector(conn: psycopg.Connection, url: str) -> None:
    """Create the pgvector extension if it is missing (a build does this); a clear error when it cannot be."""
    if has_pgvector(conn):
        return
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise PgvectorMissingError(
            f"{describe(url)} has no pgvector extension and it could not be created ({_first_line(exc)}): "
            "install pgvector ≥ 0.5 on the server (managed services: enable the `vector` extension) and run "
            "`CREATE EXTENSION vector;` as a user allowed to, then run `faq build --store …` again"
        ) from None


def has_pgvector(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


def require_pgvector(conn: psycopg.Connection, url: str) -> None:
    """Readers never create extensions: they say what to run."""
    if not has_pgvector(conn):
        raise PgvectorMissingError(
            f"{describe(url)} has no pgvector extension, so it holds no FAQ build: install pgvector, "
            "then run `faq build --store …` (it creates the extension when allowed)"
        )
