"""One writer per run directory: an exclusive ``fcntl.flock`` on ``RUN_DIR/ecogen.lock``.

The lock lives as long as the process holds the open file, and the operating system drops it
when the process ends, however it ends (SIGKILL included), so a lock left by a dead process never
blocks the next command. The file also names its holder (pid, host, start time, command) for the
message that refuses a second writer; that text is informative only, the flock is the lock.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .errors import RunError

LOCKNAME = "ecogen.lock"

try:  # POSIX; elsewhere (Windows) runs are not locked.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class RunLock:
    """The exclusive write lock of one run directory, held until :meth:`release`."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCKNAME
        try:
            # No O_TRUNC: a refused opener must not erase the holder's details.
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"{run_dir}: cannot lock the run directory ({exc.strerror})") from None
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(self._read())
            os.close(self._fd)
            self._fd = None
            raise RunError(
                f"{run_dir}: in use by another ecogen process ({holder}); wait for it to end"
                " or stop it, then run `ecogen resume` on it"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(_holder()).encode(), 0)

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(os.pread(self._fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (closing the file is what releases a flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.time(),
        "command": " ".join(["ecogen", *sys.argv[1:]])[:200],
    }


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {since}"
