"""Storage: one Repository interface; SQLite by default, PostgreSQL selected by database URL."""

from __future__ import annotations

from gateway.storage.base import Indexer, Repository, Session, StoredVersion


def open_repository(url: str, indexer: Indexer) -> Repository:
    """`sqlite:///path.db` (or a bare path) or `postgresql://…`."""
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.storage.postgres import PostgresRepository

        return PostgresRepository(url, indexer)
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    from gateway.storage.sqlite import SqliteRepository

    return SqliteRepository(path, indexer)


__all__ = ["Indexer", "Repository", "Session", "StoredVersion", "open_repository"]
