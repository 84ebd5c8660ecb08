"""Crash recovery: background autosave of the open document, and finding what a crashed
session left behind. Qt-free (the dialog that offers the files is ``ui/recovery.py``).

Each running window writes ``autosave-<pid>-<session>.inpaint`` (a project file, written
atomically in a worker thread from a snapshot of the arrays) into the recovery folder,
``~/.local/share/inpaint-gui/recovery`` (``$XDG_DATA_HOME`` respected; next to the
``models`` folder). Next to it, ``autosave-<pid>-<session>.lock`` stays locked (``flock``;
``msvcrt.locking`` on Windows) for as long as the session runs, and records the pid, the
process start time and the host. The recovery file is removed when the work is saved or
deliberately discarded.

A file is *left over* when no running session owns it: its lock can be taken, i.e. the
process that held it is gone, even if its pid now belongs to another program. Files of older
versions (no lock file) are left over when their pid is not running, or is running a process
that started after the file was written (the pid was reused). Leftovers are listed newest
first with their date and image name; none is deleted here unless the caller asks for that
file by name.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional

APP_DIR_NAME = "inpaint-gui"
RECOVERY_DIR_NAME = "recovery"

_NAME = re.compile(r"^autosave-(\d+)-([0-9a-f]+)\.inpaint$")
_LOCK_SUFFIX = ".lock"

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

    _LOCKING = True
else:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no POSIX locks on this platform
        fcntl = None

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise  # locks not supported here (ENOLCK, EOPNOTSUPP): caller falls back

    def _unlock(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass

    _LOCKING = fcntl is not None


# ============================================================================ folders

def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/inpaint-gui`` (default ``~/.local/share/inpaint-gui``): the folder
    that also holds the user ``models`` folder."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / APP_DIR_NAME


def default_recovery_dir() -> Path:
    return user_data_dir() / RECOVERY_DIR_NAME


# ============================================================================ processes

def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (any program: pids are reused)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would send Ctrl+C there
        return True  # unknown: assume it runs (the caller then keeps the file)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def process_start_time(pid: int) -> Optional[float]:
    """When process ``pid`` started (seconds since the epoch), from /proc; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f.read().decode().splitlines()
                         if line.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _lock_path(path: str) -> str:
    return path[: -len(".inpaint")] + _LOCK_SUFFIX


def _owned_by_running_session(path: str, pid: int) -> bool:
    """True when a running session still owns the recovery file ``path``."""
    lock = _lock_path(path)
    if _LOCKING and os.path.exists(lock):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if _try_lock(fd):
                    _unlock(fd)
                    return False  # nobody holds it: the session ended without cleaning up
                return True
            except OSError:
                pass  # locks not supported on this file system: use the recorded facts
            finally:
                os.close(fd)
        try:
            info = json.loads(Path(lock).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if info.get("host") and info.get("host") != socket.gethostname():
            return True  # another computer's session (shared home): cannot tell, keep it
        started = info.get("started")
        if pid_alive(pid):
            now = process_start_time(pid)
            return not (started and now and abs(now - float(started)) > 1.0)
        return False
    # a file of an older version (no lock file): pid, and the pid's start time on Linux
    if not pid_alive(pid):
        return False
    started = process_start_time(pid)
    if started is not None:
        try:
            written = os.path.getmtime(path)
        except OSError:
            return True
        if started > written + 1.0:
            return False  # the pid now belongs to a process started after the file was written
    return True


# ============================================================================ autosave

class Autosaver:
    """Writes the recovery file of one session. ``save(path, state)`` writes a project
    atomically (the window passes ``project.save_project``)."""

    def __init__(self, folder: "str | os.PathLike", save: Callable[[str, object], None]) -> None:
        self.folder = os.fspath(folder)
        self._save = save
        self.path = os.path.join(self.folder,
                                 f"autosave-{os.getpid()}-{uuid.uuid4().hex[:10]}.inpaint")
        self.lock_path = _lock_path(self.path)
        self._lock_fd: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.last_error: Optional[str] = None
        self.last_saved: Optional[float] = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _take_lock(self) -> None:
        """Create and lock this session's lock file (held until :meth:`close`)."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if _LOCKING:
                try:
                    _try_lock(fd)
                except OSError:
                    pass  # no locks here: the recorded pid and start time still tell
            info = {"pid": os.getpid(), "started": process_start_time(os.getpid()),
                    "host": socket.gethostname()}
            data = json.dumps(info).encode()
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, data)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def save_async(self, state) -> bool:
        """Write ``state`` in the background; False when a previous write is still running.
        The caller must pass arrays that will not change (see :func:`snapshot`)."""
        if self.busy:
            return False
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._take_lock()
        except OSError as exc:
            self.last_error = str(exc)
            return False

        def run():
            try:
                with self._lock:
                    self._save(self.path, state)
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
            except OSError:
                pass

    def close(self) -> None:
        """The session ends cleanly: remove the recovery file and the lock."""
        self.discard()
        if self._lock_fd is not None:
            try:
                os.unlink(self.lock_path)
            except OSError:
                pass
            if _LOCKING:
                _unlock(self._lock_fd)
            os.close(self._lock_fd)
            self._lock_fd = None


def snapshot(state):
    """A copy of a ``ProjectState`` that later edits cannot change (the image is immutable by
    convention; the mask, result list and extras are copied)."""
    return dataclasses.replace(state, mask=state.mask.copy(), results=list(state.results),
                               extra=dict(state.extra))


# ============================================================================ leftovers

@dataclass
class Leftover:
    """A recovery file no running session owns."""

    path: str
    saved: float                       # modification time (seconds since the epoch)
    size_bytes: int
    source_path: Optional[str] = None  # the image the work started from
    image_size: Optional[tuple] = None  # (width, height)
    results: int = 0
    problem: Optional[str] = None      # the file could not be read (still listed, never hidden)

    @property
    def image_name(self) -> str:
        return os.path.basename(self.source_path) if self.source_path else "untitled image"

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved))

    def describe(self) -> str:
        """One line for the user: date, image name, size."""
        bits = [self.when, self.image_name]
        if self.image_size:
            bits.append(f"{self.image_size[0]}\u00d7{self.image_size[1]}")
        if self.problem:
            bits.append(f"(damaged: {self.problem})")
        return ", ".join(bits)


def _read_manifest(path: str, item: Leftover) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            manifest = json.loads(z.read("project.json").decode("utf-8"))
        item.source_path = manifest.get("source_path") or None
        shape = (manifest.get("image") or {}).get("shape")
        if shape and len(shape) >= 2:
            item.image_size = (int(shape[1]), int(shape[0]))
        item.results = len(manifest.get("results") or [])
    except Exception as exc:  # noqa: BLE001 - a damaged file is listed with the reason
        item.problem = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _remove_stale_lock(lock: str, names: List[str]) -> None:
    """A lock file whose recovery file is gone and whose session ended: bookkeeping only."""
    base = os.path.basename(lock)[: -len(_LOCK_SUFFIX)]
    if not _LOCKING or not _NAME.match(base + ".inpaint") or base + ".inpaint" in names:
        return
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return
    try:
        if _try_lock(fd):
            try:
                os.unlink(lock)
            finally:
                _unlock(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def find_leftovers(folders: Iterable["str | os.PathLike"],
                   exclude: Iterable["str | os.PathLike"] = ()) -> List[Leftover]:
    """Every recovery file in ``folders`` that no running session owns, newest first."""
    skip = {os.path.abspath(os.fspath(p)) for p in exclude if p}
    out: List[Leftover] = []
    seen = set()
    for folder in folders:
        if not folder:
            continue
        folder = os.fspath(folder)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.endswith(_LOCK_SUFFIX):
                _remove_stale_lock(os.path.join(folder, name), names)
                continue
            m = _NAME.match(name)
            if not m:
                continue
            path = os.path.abspath(os.path.join(folder, name))
            if path in skip or path in seen:
                continue
            seen.add(path)
            if _owned_by_running_session(path, int(m.group(1))):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            item = Leftover(path=path, saved=st.st_mtime, size_bytes=st.st_size)
            _read_manifest(path, item)
            out.append(item)
    out.sort(key=lambda it: it.saved, reverse=True)
    return out


def delete_leftover(path: "str | os.PathLike") -> None:
    """Delete one recovery file (and its lock file). Only names the autosaver writes are
    accepted; raises ``OSError`` when the file cannot be removed."""
    path = os.fspath(path)
    if not _NAME.match(os.path.basename(path)):
        raise ValueError(f"{path} is not a recovery file")
    os.unlink(path)
    try:
        os.unlink(_lock_path(path))
    except OSError:
        pass
