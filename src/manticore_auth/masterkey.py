"""The server's master key file: 32 random bytes, base64 on one line, mode 0600, created atomically."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from .errors import AuthConfigError

__all__ = ["MASTER_KEY_BYTES", "load_or_create_master_key"]

MASTER_KEY_BYTES = 32


def load_or_create_master_key(path: str | os.PathLike[str]) -> bytes:
    """Return the 32-byte master key stored at ``path``, creating the file first if it does not exist.

    A new file is written under a temporary name with mode 0600, flushed to disk and then hard-linked to
    ``path``, so a reader never sees a partial key and two processes starting at once agree on one key
    (the loser of the race reads the winner's file). Missing parent directories are created (mode 0700).

    Raises:
        AuthConfigError: the file is not a valid key, or (on POSIX) is readable or writable by group or
            others: fix it with ``chmod 600``. The message never contains key material.
        OSError: the file or its directory cannot be read or written.
    """
    target = Path(path)
    try:
        return _read(target)
    except FileNotFoundError:
        pass
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    try:
        _create(target, base64.urlsafe_b64encode(key) + b"\n")
    except FileExistsError:
        return _read(target)
    return key


def _read(target: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags)
    try:
        mode = os.fstat(fd).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuthConfigError(
                f"master key file {target} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                "run chmod 600 on it"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            text = handle.read(4096)
    finally:
        os.close(fd)
    try:
        key = base64.urlsafe_b64decode(text.strip())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise AuthConfigError(f"master key file {target} does not hold a valid {MASTER_KEY_BYTES}-byte key")
    return key


def _create(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target`` atomically; FileExistsError if ``target`` already exists."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(target.parent)


def _sync_directory(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
