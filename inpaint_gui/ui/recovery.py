"""Qt-free crash recovery: periodic background autosave of the document as a project.

Each running window writes ``autosave-<pid>-<session>.inpaint`` in the recovery folder (in a
worker thread, atomically, from a snapshot of the arrays: the image is immutable by
convention, the mask is copied). The file is removed when the work is saved or
deliberately discarded; files left behind by a process that is no longer running are
offered for recovery at the next start.
"""
from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import replace
from typing import List, Optional

from .project import ProjectState, save_project

_NAME = re.compile(r"^autosave-(\d+)-([0-9a-f]+)\.inpaint$")


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Autosaver:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, f"autosave-{os.getpid()}-{uuid.uuid4().hex[:10]}.inpaint")
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.last_error: Optional[str] = None
        self.last_saved: Optional[float] = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def save_async(self, state: ProjectState) -> bool:
        """Write ``state`` in the background; False when a previous write is still running.
        The caller must pass arrays that will not change (copy the mask)."""
        if self.busy:
            return False
        os.makedirs(self.folder, exist_ok=True)

        def run():
            try:
                with self._lock:
                    save_project(self.path, state)
                self.last_saved = time.time()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - autosave must never crash the app
                self.last_error = str(exc)

        self._thread = threading.Thread(target=run, name="autosave", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def discard(self) -> None:
        """Remove this session's recovery file (work saved or deliberately discarded)."""
        self.wait()
        with self._lock:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError:
                pass


def snapshot(state: ProjectState) -> ProjectState:
    return replace(state, mask=state.mask.copy(), results=list(state.results),
                   extra=dict(state.extra))


def orphaned_files(folder: str, exclude: Optional[str] = None) -> List[str]:
    """Recovery files of sessions that are no longer running, newest first."""
    if not folder or not os.path.isdir(folder):
        return []
    out = []
    for name in os.listdir(folder):
        m = _NAME.match(name)
        if not m:
            continue
        path = os.path.join(folder, name)
        if exclude and os.path.abspath(path) == os.path.abspath(exclude):
            continue
        if pid_alive(int(m.group(1))):
            continue
        out.append(path)
    out.sort(key=lambda p: os.path.getmtime(p), reverse=True)
    return out
