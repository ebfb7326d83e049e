"""Crash-safe file updates: whole-file replacement and single-line appends.

Replacement relies on POSIX rename(2) atomicity (Python's ``os.replace``): the new content goes to a
temporary file in the target's own directory (a rename cannot cross file systems), is flushed to disk,
then takes the target's name, so a reader or a crash sees either the old file or the new one, never a
mix. Appends use O_APPEND so that concurrent writers cannot overwrite each other's lines.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def atomic_write(path: Path, data: bytes, *, new_file_mode: int = PRIVATE_FILE_MODE) -> None:
    """Replace the content of ``path`` with ``data`` atomically.

    An existing file keeps its permission bits; a new one gets ``new_file_mode``. A symbolic link is
    followed, so the file it points to is updated and the link stays a link.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = new_file_mode
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.chmod(temp_name, mode)
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


def append_line(
    path: Path,
    line: bytes,
    *,
    new_file_mode: int = PRIVATE_FILE_MODE,
    new_dir_mode: int = PRIVATE_DIR_MODE,
) -> None:
    """Add ``line`` and a newline at the end of ``path``, leaving every existing byte in place.

    When the file does not end with a newline, one is written first so that the new line does not
    glue onto the last one. Missing parent directories are created with ``new_dir_mode`` and a
    missing file with ``new_file_mode`` (whatever the umask says).
    """
    if b"\n" in line:
        raise ValueError("append_line takes a single line without a newline")
    if not path.parent.exists():
        os.makedirs(path.parent, mode=new_dir_mode, exist_ok=True)
    fd, created = _open_for_append(path, new_file_mode)
    try:
        if created and hasattr(os, "fchmod"):
            os.fchmod(fd, new_file_mode)
        info = os.fstat(fd)
        regular = stat.S_ISREG(info.st_mode)
        separator = b""
        if regular and info.st_size > 0 and os.pread(fd, 1, info.st_size - 1) != b"\n":
            separator = b"\n"
        _write_all(fd, separator + line + b"\n")
        # Special files such as /dev/null (a common UserKnownHostsFile) may refuse fsync.
        if regular:
            os.fsync(fd)
    finally:
        os.close(fd)


def _open_for_append(path: Path, new_file_mode: int) -> tuple[int, bool]:
    flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, new_file_mode), True
    except FileExistsError:
        return os.open(path, flags), False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform or file system can open a directory.
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
