"""Checks for anything that comes from outside: names, paths and network binds."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path

_SAFE_NAME = re.compile(r"^[A-Za-z0-9\u3040-\u30ff\u3400-\u9fff_.-]{1,80}$")


class UnsafeInputError(ValueError):
    """A name or path from the user that would escape the workspace or is malformed."""


def safe_name(name: str) -> str:
    """A name that is safe as one path component (letters, digits, kana/kanji, `_.-`)."""
    name = (name or "").strip()
    if not _SAFE_NAME.match(name) or name in {".", ".."} or name.startswith("."):
        raise UnsafeInputError(
            f"{name!r} is not a valid name: use 1-80 letters, digits, '_', '-' or '.', "
            "not starting with '.'"
        )
    return name


def is_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when `path`, with links resolved, lies inside `root`."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def confine(path: str | os.PathLike, roots: list[Path]) -> Path:
    """Resolve `path` and insist that it lies inside one of `roots`."""
    resolved = Path(path).expanduser().resolve()
    if not any(is_within(resolved, r) for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise UnsafeInputError(f"{path} is outside the allowed folders ({allowed})")
    return resolved


def is_loopback_host(host: str) -> bool:
    """True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)
