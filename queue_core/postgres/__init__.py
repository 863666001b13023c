"""The PostgreSQL backend: ``queue_core.connect("postgresql://...")`` opens it.

This subpackage is the only part of queue_core that imports ``psycopg`` (3, installed with
``pip install prismq-queue-core[postgres]``); ``import queue_core`` never loads it.

- :mod:`queue_core.postgres.database`: :class:`~queue_core.postgres.database.PostgresDatabase`,
  the :class:`~queue_core.backend.QueueBackend` of a PostgreSQL server (connection,
  transactions, rows shaped as SQLite's, error translation, reconnection);
- :mod:`queue_core.postgres.claiming`: the claim in one ``FOR UPDATE SKIP LOCKED`` statement;
- :mod:`queue_core.postgres.errors` maps psycopg errors to the typed errors of
  :mod:`queue_core.exceptions`;
- :mod:`queue_core.postgres.schema` applies the migrations of ``queue_core/sql/postgres``.
"""

from __future__ import annotations
