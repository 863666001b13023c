"""Without psycopg these modules cannot be imported: leave them out, except on CI."""

from __future__ import annotations

from tests.postgres_support import may_leave_out, missing_client

collect_ignore_glob = ["test_*.py"] if missing_client() and may_leave_out() else []
