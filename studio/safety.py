"""Checks for anything that comes from outside: names, paths and network binds."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path

from studio.errors import StudioError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9\u3040-\u30ff\u3400-\u9fff_.-]{1,80}$")


class UnsafeInputError(StudioError, ValueError):
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


# --- confinement when the app is reachable from other machines ----------------------------
# The app sets it once at start when it is exposed (a non-loopback address or a share link);
# every library call that turns a user's path into a file then goes through `user_path` or
# (models) `studio.models.load.resolve_source`. Loopback addresses (127.0.0.0/8, ::1) are
# not exposed: only this machine reaches them, as with the default 127.0.0.1.
_CONFINED: dict[str, list[Path]] = {}


def confine_app(*, models: list[Path], files: list[Path]) -> None:
    """Confine the paths users give to these folders, for the rest of this process."""
    _CONFINED["models"] = [Path(p) for p in models]
    _CONFINED["files"] = [Path(p) for p in files]


def confinement(kind: str) -> list[Path] | None:
    """The folders `kind` ("models" or "files") is confined to, or None when not exposed."""
    return _CONFINED.get(kind)


def user_path(path: str | os.PathLike, base: Path | None = None) -> Path:
    """A file path a user gave: relative to `base` when given, and inside the allowed
    folders when the app is exposed. Outside them it is refused the same way whether or not
    it exists (the answer must not tell a browser what is on the server's disk)."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and base is not None:
        candidate = base / candidate
    roots = confinement("files")
    return confine(candidate, roots) if roots is not None else candidate


MAX_USER_FILE_BYTES = 16 << 20


def read_user_file(path: Path, limit: int = MAX_USER_FILE_BYTES) -> bytes:
    """The bytes of a small regular file a user named: a FIFO, a device (`/dev/zero`) or a
    file over `limit` bytes is refused instead of blocking or filling memory."""
    import stat

    info = os.stat(path)  # OSError for a missing file, as open() would raise
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeInputError(f"{path} is not a regular file")
    if info.st_size > limit:
        raise UnsafeInputError(f"{path} is over {limit >> 20} MiB ({info.st_size:,} bytes)")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise UnsafeInputError(f"{path} is over {limit >> 20} MiB")
    return data


# --- YAML from users ----------------------------------------------------------------------
MAX_YAML_VALUES = 1_000_000


class YamlRefused(StudioError, ValueError):
    """YAML that would expand beyond bounds (an alias bomb), refused before it expands."""


def _bounded_document(loader):
    import yaml

    node = loader.get_single_node()
    if node is None:
        return None
    sizes: dict[int, int] = {}

    def expanded(n) -> int:
        known = sizes.get(id(n))
        if known is not None:
            return known
        sizes[id(n)] = 1  # a node that contains itself counts once
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(expanded(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(expanded(k) + expanded(v) for k, v in n.value)
        sizes[id(n)] = total
        if total > MAX_YAML_VALUES:
            raise YamlRefused(
                f"the YAML expands to more than {MAX_YAML_VALUES:,} values (through its "
                "aliases, *name); write the values out instead"
            )
        return total

    expanded(node)
    return loader.construct_document(node)


def load_yaml(text: str):
    """`yaml.safe_load`, refusing a document whose values, with every alias (`*name`)
    expanded, number more than `MAX_YAML_VALUES`. A ~400-byte "billion laughs" document
    loads as a small graph of shared lists, and then whatever walks it (a message that
    prints it, a copy) expands it to gigabytes; it is counted, not walked, here."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        return _bounded_document(loader)
    except RecursionError:
        raise YamlRefused("the YAML is nested too deeply") from None
    finally:
        loader.dispose()
