"""Fixtures shared by every test folder.

``pg_dsn``: one throwaway PostgreSQL server for the whole session (``tests/store/pg.py``
starts it; a folder that needs PostgreSQL makes fresh databases in it with
``fresh_database``). It fails, never skips, when no server can start: a missing server
must not turn the PostgreSQL half of a suite green.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# tests/ has no __init__.py, so pytest puts it on sys.path and names tests/store "store".
from store.pg import ClusterError, throwaway_cluster


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    try:
        with throwaway_cluster() as dsn:
            yield dsn
    except ClusterError as e:
        pytest.fail(str(e), pytrace=False)
