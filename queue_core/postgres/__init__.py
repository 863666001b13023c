"""The PostgreSQL backend (in progress): schema migrations and error translation.

This subpackage is the only part of queue_core that imports ``psycopg`` (3, installed with
``pip install prismq-queue-core[postgres]``); ``import queue_core`` never loads it.

- :mod:`queue_core.postgres.errors` maps psycopg errors to the typed errors of
  :mod:`queue_core.exceptions`;
- :mod:`queue_core.postgres.schema` applies the migrations of ``queue_core/sql/postgres``.

The queue itself does not run on PostgreSQL yet.
"""

from __future__ import annotations
