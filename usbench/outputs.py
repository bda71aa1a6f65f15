"""What usbench writes, and how: atomically, readable like any file of the user's, never over the user's work.

- :func:`atomic_write_bytes` writes through a temp file and a rename (a crash never leaves half a
  file), and gives the file the mode any file the user creates gets (``0666 & ~umask``) instead of
  the temp file's private ``0600``.
- Every folder usbench writes results into holds :data:`MANIFEST` (``.usbench-outputs.json``): the
  files usbench wrote there and their sha256. :func:`claim` refuses, before any work, to write over
  a file that is not in it (or was changed since), with the fix; ``--force`` overrides.
- A full disk, a read-only filesystem or a denied permission becomes one :class:`WriteError` line,
  and :func:`remove_created` removes the folders this process created, so nothing partial is left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from usbench.errors import OutputError

MANIFEST = ".usbench-outputs.json"
_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}
_created: list[Path] = []  # folders this process created, outermost first


class WriteError(OutputError):
    """The disk refused a write (full, read-only, permission): nothing usbench made is left partial."""


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS


def write_error(exc: OSError, path: Path | str | None = None) -> WriteError:
    """The one line for an OSError of the disk, with what to do about it."""
    where = path or exc.filename or "the output"
    reason = _DISK_ERRNOS.get(exc.errno, exc.strerror or type(exc).__name__)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space or choose another --out, then rerun the same command"
    elif exc.errno == errno.EROFS:
        hint = "choose a writable --out (or --cache)"
    else:
        hint = "fix the folder's permissions or choose another --out (or --cache)"
    return WriteError(f"cannot write to {where}: {reason}", hint)


def check_can_create(path: Path | str) -> None:
    """Refuse, before any work, a ``path`` whose nearest existing folder cannot be written
    (a read-only filesystem, no permission): the same line a failed write would give."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(p).f_flag & os.ST_RDONLY)
        code = errno.EROFS if read_only else errno.EACCES
        raise write_error(OSError(code, os.strerror(code), str(p)), p)


def file_mode() -> int:
    """The mode a new file of the user gets: 0666 minus the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def make_dirs(path: Path | str) -> Path:
    """``mkdir -p`` that remembers the outermost folder it created (see :func:`remove_created`)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_error(exc):
            raise write_error(exc, path) from None
        raise
    if missing:
        _created.append(missing[-1])
    return path


def remove_created() -> list[Path]:
    """Remove the folders this process created (after a disk error: nothing partial is left)."""
    removed = []
    while _created:
        p = _created.pop()
        if p.exists():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def forget_created() -> None:
    _created.clear()


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file and a rename, with the user's umask; disk errors
    become one :class:`WriteError` line and leave no temp file."""
    path = Path(path)
    make_dirs(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes it 0600: the result is an ordinary file
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if is_disk_error(exc):
            raise write_error(exc, path) from None
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# ownership


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(folder: Path) -> dict[str, str]:
    p = folder / MANIFEST
    if not p.is_file():
        return {}
    try:
        return dict(json.loads(p.read_text(encoding="utf-8")).get("files", {}))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}


def _looks_like_usbench(path: Path) -> bool:
    """Files of usbench 0.1, which wrote no manifest: recognised by their first bytes."""
    try:
        head = path.read_bytes()[:400].decode("utf-8", "replace")
    except OSError:
        return False
    return (head.startswith("run_id,generator,subset,") or head.startswith("| generator | subset")
            or "<title>usbench " in head)


def owned(folder: Path, name: str) -> bool:
    """Did usbench write ``folder/name`` (and nobody change it since)?"""
    folder = Path(folder)
    path = folder / name
    if not path.exists():
        return True
    if path.is_dir():
        return False
    recorded = _read_manifest(folder).get(name)
    if recorded is not None:
        return recorded == _sha256(path)
    return _looks_like_usbench(path)


def claim(folder: Path | str, names: Iterable[str], force: bool = False, flag: str = "--out") -> None:
    """Refuse, before any work, to write ``names`` into ``folder`` over files usbench did not write.

    A name ending in ``/`` is a folder usbench fills (``figures/``): every file in it is checked.
    """
    folder = Path(folder)
    if force or not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder", f"give {flag} a folder name")
    if not (folder / MANIFEST).exists() and any(folder.glob("runs/*/run.json")):
        return  # a benchmark folder of usbench 0.1, which kept no manifest: its files are usbench's
    for name in names:
        if name.endswith("/"):
            sub = folder / name.rstrip("/")
            if sub.exists() and not sub.is_dir():
                _refuse(folder, name.rstrip("/"), flag)
            inner = sorted(p for p in sub.rglob("*") if p.is_file()) if sub.is_dir() else []
            for p in inner:
                if not owned(folder, str(p.relative_to(folder))):
                    _refuse(folder, str(p.relative_to(folder)), flag)
        elif not owned(folder, name):
            _refuse(folder, name, flag)


def _refuse(folder: Path, name: str, flag: str) -> None:
    path = folder / name
    what = "a folder" if path.is_dir() else "a file"
    raise OutputError(f"{path} exists and is {what} usbench did not write; refusing to overwrite it",
                      f"choose another {flag}, move it away, or pass --force to overwrite")


def record(folder: Path | str, paths: Iterable[Path | str]) -> None:
    """Note in ``folder``'s manifest that usbench wrote ``paths`` (with their sha256 now)."""
    folder = Path(folder)
    files = _read_manifest(folder)
    for p in map(Path, paths):
        if p.is_file():
            files[str(p.resolve().relative_to(folder.resolve()))] = _sha256(p)
    text = json.dumps({"written_by": "usbench", "files": dict(sorted(files.items()))}, indent=1)
    atomic_write_text(folder / MANIFEST, text)


__all__ = ["MANIFEST", "WriteError", "atomic_write_bytes", "atomic_write_text", "claim", "file_mode", "forget_created",
           "is_disk_error", "make_dirs", "owned", "record", "remove_created", "write_error"]
