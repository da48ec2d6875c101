"""A lock file that keeps two runs out of one folder.

    lock = FolderLock("runs/try")      # runs/try/.lock
    lock.acquire()                     # ValueError if another live process holds it
    try:
        ...                            # train, write the run's files
    finally:
        lock.release()

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic: of two processes creating it at
once, one fails) that holds the owner's process id and host name. A lock whose process is no
longer running on this host (a killed run) is stale: it is taken over, with a warning. A lock
of this very process is taken again (a notebook re-running its cells). A lock from another host
cannot be checked and is refused. Two processes taking over the same stale lock at the same
instant could both succeed; the lock guards against a second run started by hand, not against
that race.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from pathlib import Path

LOCK_NAME = ".lock"


def pid_alive(pid: int) -> bool:
    """True if a process with id ``pid`` runs on this machine (True when it cannot be told)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        try:
            import psutil
        except ImportError:
            return True
        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class FolderLock:
    """The lock file ``folder/.lock`` (see the module docstring)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def _owner(self) -> tuple[int, str] | None:
        """The (pid, host) written in the lock file, or None if it cannot be read."""
        try:
            pid, host = self.path.read_text().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None

    def _create(self) -> bool:
        """Create the lock file holding this process's id; False if it exists already."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()} {socket.gethostname()}\n")
        return True

    def acquire(self) -> FolderLock:
        """Take the lock (creating the folder); ValueError if another live run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._create():
            self.held = True
            return self
        owner = self._owner()
        here = socket.gethostname()
        if owner is not None and owner == (os.getpid(), here):
            self.held = True  # this process's own lock, e.g. a notebook cell run again
            return self
        if owner is not None and owner[1] == here and not pid_alive(owner[0]):
            warnings.warn(f"taking over the stale lock {self.path}: process {owner[0]}, which "
                          "held it, is no longer running", stacklevel=2)
            self.path.unlink(missing_ok=True)
            if self._create():
                self.held = True
                return self
            owner = self._owner()
        holder = ("an unreadable lock" if owner is None
                  else f"process {owner[0]} on {owner[1]}")
        raise ValueError(
            f"another run is using the folder {self.path.parent} ({holder} holds {self.path}); "
            "wait for it to finish or use another out_dir (if no run is using it, delete the "
            f"lock file {self.path})")

    def release(self) -> None:
        """Remove the lock file if this process holds it (safe to call twice)."""
        if self.held and self._owner() == (os.getpid(), socket.gethostname()):
            self.path.unlink(missing_ok=True)
        self.held = False


__all__ = ["LOCK_NAME", "FolderLock", "pid_alive"]
