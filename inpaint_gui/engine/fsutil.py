"""Atomic file writes: the one home of "temporary file next to the target, fsync, rename".

A reader never sees a half-written file: the data go to a hidden temporary file in the
target's folder, are flushed to disk, and only then take the target's name (``os.replace``,
or a hard link when an existing file must not be replaced). On any failure the temporary
file is removed and the target is left as it was.

* :func:`atomic_write` runs ``write(fileobj)``; :func:`atomic_write_bytes`,
  :func:`atomic_write_text` and :func:`atomic_torch_save` (``torch.save``; torch is imported
  only when it is called) are its short forms.
* ``overwrite=False`` never replaces a file: ``FileExistsError`` if the target exists before
  or appears while writing (no-clobber via a hard link where the file system has them).
* ``verify(tmp_path)`` runs on the written temporary file before it is moved into place;
  raising there aborts the write (the weight store checks the copy's sha256 there).
* ``parents=True`` creates the target's folder first.

Errors are the plain ``OSError`` / ``FileExistsError`` of the file system (or what ``write``
or ``verify`` raise): callers that show messages to users word them (``imageio``, projects,
the weight store).
"""
from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save",
           "fsync_dir"]


def atomic_write(path: PathLike, write: Callable[[BinaryIO], object], *,
                 overwrite: bool = True, parents: bool = False,
                 verify: Optional[Callable[[Path], object]] = None) -> Path:
    """Run ``write(fileobj)`` into a temporary file next to ``path``, fsync it, run
    ``verify(temporary path)`` if given, then move it to ``path``. Returns ``path``."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if parents:
        folder.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(errno.EEXIST, f"{path.name} already exists", str(path))
    tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    return path


def atomic_write_bytes(path: PathLike, data: bytes, *, overwrite: bool = True,
                       parents: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data), overwrite=overwrite, parents=parents)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8",
                      overwrite: bool = True, parents: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (``encoding``, no newline translation)."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite, parents=parents)


def atomic_torch_save(obj, path: PathLike, *, parents: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (the bytes ``torch.save(obj, path)`` writes)."""
    import torch
    return atomic_write(path, lambda f: torch.save(obj, f), parents=parents)


def fsync_dir(path: PathLike) -> None:
    """Flush a folder's entries to disk (after a rename into it); quiet where unsupported."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist (atomic where links work)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"{path.name} already exists", str(path)) from None
    except OSError:  # file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(errno.EEXIST, f"{path.name} already exists",
                                  str(path)) from None
        os.replace(tmp, path)
        return
    _unlink_quiet(tmp)


def _unlink_quiet(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
