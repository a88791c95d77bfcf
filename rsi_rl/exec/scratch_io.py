"""Link-safe reads (and writes) of a run's scratch directory by the trusted parent.

The sandboxed program owns its scratch directory while it runs: it may replace any file
there with a symbolic link (to ``/proc/self/environ``, a file in the hidden home
directory), a hard link, a FIFO (an ``open`` that never returns), a device (``/dev/zero``,
a read that never ends), or, in plain mode, rename the directory itself and put a link in
its place. The parent therefore never follows a path into it after a run:

- :class:`ScratchDir` opens the directory as a file descriptor *before* the run
  (``O_DIRECTORY | O_NOFOLLOW``) and resolves every name relative to that descriptor, so
  renaming or replacing the directory changes nothing;
- a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a link fails, a FIFO never blocks),
  must be a regular file with a single link, and is read with a size cap.

A file that breaks these rules raises :class:`UnsafeScratchFile`, whose message names the
file and the problem (``"stderr.log is a symbolic link, not a regular file"``). A file
that does not exist is not unsafe: the read methods return ``None`` for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rsi_rl.core.errors import RsiRlError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


class UnsafeScratchFile(RsiRlError):
    """A file of a run's scratch directory is not a plain regular file the parent may read
    (a link, a FIFO, a device, a directory, or larger than its cap); the message names it."""


def format_size(n: int | float) -> str:
    """``n`` bytes for a message: ``"512 B"``, ``"16 MiB"``, ``"3.2 GiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            text = f"{value:.1f}".rstrip("0").rstrip(".") if unit != "B" else f"{int(value)}"
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeScratchFile(f"{name!r} is not a plain file name of the scratch directory")


def relpath_parts(relpath: str) -> list[str]:
    """The names of a plain relative path of the scratch dir (``out/model.pt``), each
    checked: no ``..``, ``.``, empty or NUL name (else :class:`UnsafeScratchFile`)."""
    parts = relpath.split("/")
    for part in parts:
        _check_name(part)
    return parts


class ScratchDir:
    """A scratch directory held by a file descriptor (see the module docstring).

    Args:
        path: the directory; opened at once, without following a final symbolic link.

    Raises:
        UnsafeScratchFile: ``path`` is a symbolic link or not a directory.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.fd: int | None = os.open(self.path, _DIR_FLAGS)
        except FileNotFoundError:
            raise
        except OSError as exc:  # ELOOP (a link) or ENOTDIR
            raise UnsafeScratchFile(
                f"scratch directory {self.path} cannot be opened safely: {exc.strerror}"
            ) from None

    @classmethod
    def create(cls, path: str | Path) -> ScratchDir:
        """Make ``path`` a fresh empty directory (removing whatever is there, without
        following links into it) and open it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        path.mkdir()
        return cls(path)

    # ---------------------------------------------------------------- basics
    def _dir(self) -> int:
        if self.fd is None:
            raise ValueError(f"scratch directory {self.path} is closed")
        return self.fd

    @contextlib.contextmanager
    def _folder(self, parts: list[str], make: bool) -> Iterator[int | None]:
        """A descriptor of the folder ``parts`` below the scratch dir, each step opened
        relative to the last without following a link, and closed on leaving.

        ``make``: missing folders are made, and an error opening one is raised as it is
        (the parent writes before the run). Otherwise a missing folder gives None and a
        part that is a link or a file raises :class:`UnsafeScratchFile`.
        """
        fds: list[int] = []
        try:
            cur = self._dir()
            for i, part in enumerate(parts):
                if make:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=cur)
                    cur = os.open(part, _DIR_FLAGS, dir_fd=cur)
                else:
                    try:
                        cur = os.open(part, _DIR_FLAGS, dir_fd=cur)
                    except FileNotFoundError:
                        yield None
                        return
                    except OSError as exc:  # ELOOP: a link; ENOTDIR: a file
                        where = "/".join(parts[: i + 1])
                        raise UnsafeScratchFile(
                            f"{where} cannot be opened safely as a folder: {exc.strerror}"
                        ) from None
                fds.append(cur)
            yield cur
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        """Close the directory's descriptor (idempotent)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> ScratchDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writes
    def write_bytes(self, relpath: str, data: bytes) -> None:
        """Write ``data`` to ``relpath`` (``"a/b.py"``: folders are made), never through a link."""
        parts = relpath_parts(relpath)
        with self._folder(parts[:-1], make=True) as cur:
            assert cur is not None  # made
            fd = os.open(parts[-1], _WRITE_FLAGS, 0o666, dir_fd=cur)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)

    def write_text(self, relpath: str, text: str) -> None:
        """Write ``text`` (UTF-8) to ``relpath``, as :meth:`write_bytes`."""
        self.write_bytes(relpath, text.encode())

    # ---------------------------------------------------------------- reads
    def _open(self, name: str, dirfd: int | None = None) -> tuple[int, os.stat_result] | None:
        """An fd of the regular file ``name`` (in the folder ``dirfd``, by default the
        scratch dir) and its stat, or None if it does not exist."""
        _check_name(name)
        dirfd = self._dir() if dirfd is None else dirfd
        try:
            # look before opening: a device or FIFO is never opened at all
            st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeScratchFile(f"{name} is {_kind(st.st_mode)}, not a regular file")
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        except OSError as exc:  # replaced by a link (ELOOP) or a socket (ENXIO) meanwhile
            raise UnsafeScratchFile(f"{name} cannot be opened safely: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeScratchFile(f"{name} is {_kind(st.st_mode)}, not a regular file")
            if st.st_nlink != 1:
                raise UnsafeScratchFile(
                    f"{name} has {st.st_nlink} hard links (a file the program wrote has one)"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def _open_capped(self, name: str, cap: int, dirfd: int | None = None) -> BinaryIO | None:
        """The regular file ``name`` opened for reading as :meth:`_open` opens it, or None
        if it does not exist.

        Raises:
            UnsafeScratchFile: not a plain regular file, or larger than ``cap`` bytes now
                (a file that grows later is the reader's to catch).
        """
        opened = self._open(name, dirfd)
        if opened is None:
            return None
        fd, st = opened
        fh = os.fdopen(fd, "rb")
        if st.st_size > cap:
            fh.close()
            raise UnsafeScratchFile(self._over(name, st.st_size, cap))
        return fh

    def check(self, name: str) -> bool:
        """Whether ``name`` exists, without reading it.

        Raises:
            UnsafeScratchFile: it exists but is not a plain regular file.
        """
        opened = self._open(name)
        if opened is not None:
            os.close(opened[0])
        return opened is not None

    def read_bytes(self, name: str, cap: int) -> bytes | None:
        """The whole file ``name``, or None if it does not exist.

        Raises:
            UnsafeScratchFile: not a plain regular file, or larger than ``cap`` bytes.
        """
        fh = self._open_capped(name, cap)
        if fh is None:
            return None
        with fh:
            data = fh.read(cap + 1)
        if len(data) > cap:  # it grew after the stat
            raise UnsafeScratchFile(self._over(name, len(data), cap))
        return data

    def read_head(self, name: str, n: int) -> bytes | None:
        """At most the first ``n`` bytes of ``name`` (a longer file is cut, not refused),
        or None if it does not exist. Raises :class:`UnsafeScratchFile` as :meth:`read_bytes`."""
        opened = self._open(name)
        if opened is None:
            return None
        with os.fdopen(opened[0], "rb") as fh:
            return fh.read(n)

    def read_tail(self, name: str, n: int) -> bytes | None:
        """At most the last ``n`` bytes of ``name``, or None if it does not exist.
        Raises :class:`UnsafeScratchFile` as :meth:`read_bytes`."""
        opened = self._open(name)
        if opened is None:
            return None
        fd, st = opened
        try:
            return os.pread(fd, n, max(0, st.st_size - n))
        finally:
            os.close(fd)

    def copy_file(self, relpath: str, dest: str | Path, cap: int) -> int | None:
        """Copy ``relpath`` (``"out/model.pt"``: through sub-folders) to ``dest``, a new file
        of the parent's; returns the bytes copied, or None if it does not exist.

        No link is followed on the way (a folder or the file replaced by a symbolic link is
        refused), and the file must be a regular file with one link, as for the reads.

        Raises:
            UnsafeScratchFile: the path is not a plain relative path, a part of it is not
                what it should be, or the file is larger than ``cap`` bytes.
        """
        parts = relpath_parts(relpath)
        with self._folder(parts[:-1], make=False) as cur:
            if cur is None:
                return None
            try:
                src = self._open_capped(parts[-1], cap, cur)
            except UnsafeScratchFile as exc:  # named by its whole path
                raise UnsafeScratchFile(str(exc).replace(parts[-1], relpath, 1)) from None
            if src is None:
                return None
            with src:
                copied = 0
                with open(dest, "xb") as out:
                    while chunk := src.read(min(1 << 20, cap + 1 - copied)):
                        copied += len(chunk)
                        if copied > cap:  # it grew after the stat
                            break
                        out.write(chunk)
                if copied > cap:
                    os.unlink(dest)
                    raise UnsafeScratchFile(self._over(relpath, copied, cap))
                return copied

    @staticmethod
    def _over(name: str, size: int, cap: int) -> str:
        return f"{name} is {format_size(size)}, over the {format_size(cap)} cap"

    # ---------------------------------------------------------------- clean-up
    def remove(self) -> None:
        """Delete the directory's contents through the descriptor, then the directory
        itself (never through a link): at :attr:`path`, or where the program moved it
        within :attr:`path`'s parent folder (plain mode); a link put at :attr:`path` is
        removed, not followed."""
        moved: str | None = None
        if self.fd is not None:
            with contextlib.suppress(OSError):
                moved = os.readlink(f"/proc/self/fd/{self.fd}")
            for name in os.listdir(self.fd):
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        shutil.rmtree(name, dir_fd=self.fd)
                    else:
                        os.unlink(name, dir_fd=self.fd)
            self.close()
        with contextlib.suppress(OSError):
            if self.path.is_symlink():
                self.path.unlink()
            else:
                os.rmdir(self.path)
        parent = os.path.realpath(self.path.parent)
        if moved and os.path.dirname(moved) == parent:  # rmdir removes an empty folder only
            with contextlib.suppress(OSError):
                os.rmdir(moved)
