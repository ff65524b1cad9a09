"""Models from the Hugging Face Hub, pulled as users already pull them: into huggingface_hub's
own cache (so every other tool shares the files), with the repository's files and size shown
first, safetensors only unless pickles are allowed, a progress line (bytes, speed, ETA), a stop
that keeps what arrived, a resume that continues it, and clear words for a gated repository,
no network and a disk too small.

The download runs in a child process (`python -m studio.models.hub`), so that a stop ends it
at once, whatever huggingface_hub is doing; the parent measures progress from the cache's
blob files, the finished ones and the `.incomplete` ones (which the next pull resumes). The
token is huggingface_hub's own (`HF_TOKEN`, or the file `hf auth login` writes): the studio
never stores, prints or logs it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import StudioError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SPARE_BYTES = 1 << 30  # left free on the cache's disk after a pull
POLL_S = 0.5


class HubError(StudioError, RuntimeError):
    """The Hub cannot give what was asked; the message says why and what to do."""


class PullStopped(StudioError, RuntimeError):
    """The user stopped a pull; what arrived stays in the cache and the next pull resumes."""

    code = "pull_stopped"

    def __init__(self, repo: str) -> None:
        super().__init__(
            f"stopped: {repo} is partly in the cache; pull it again to continue", repo=repo
        )


@dataclass
class RepoFile:
    name: str
    size: int
    pickle: bool = False  # a pickle file (*.bin, *.pt, ...): code runs when it is loaded
    fetch: bool = True  # pulled (pickles only when allowed and no safetensors exist)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Listing:
    """A repository at one commit: its files, which of them a pull fetches, and their size."""

    repo: str
    revision: str  # the commit the branch or tag pointed at
    files: list[RepoFile] = field(default_factory=list)
    gated: bool = False
    repo_type: str = "model"  # or "dataset"
    ref: str = "main"  # the branch or tag asked for (or the commit)

    @property
    def fetched(self) -> list[RepoFile]:
        return [f for f in self.files if f.fetch]

    @property
    def skipped(self) -> list[RepoFile]:
        return [f for f in self.files if not f.fetch]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.fetched)

    def to_dict(self) -> dict:
        return {
            "repo": self.repo,
            "repo_type": self.repo_type,
            "revision": self.revision,
            "gated": self.gated,
            "total_bytes": self.total_bytes,
            "files": [f.to_dict() for f in self.files],
        }


@dataclass
class PullProgress:
    done: int  # bytes of the listing's files in the cache, partial ones included
    total: int
    seconds: float
    done_now: int = 0  # of them, bytes that arrived in this pull (not the resumed part)

    @property
    def speed(self) -> float:
        return self.done_now / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        return (self.total - self.done) / self.speed if self.speed > 0 else None

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        eta = f", ETA {self.eta:.0f} s" if self.eta is not None else ""
        return (
            f"{self.done / 2**20:,.1f} / {self.total / 2**20:,.1f} MiB ({share:.0%}), "
            f"{self.speed / 2**20:.1f} MiB/s{eta}"
        )


def _errors():
    from huggingface_hub import errors

    return errors


def hub_error(exc: BaseException, repo: str, repo_type: str = "model") -> HubError:
    """What a huggingface_hub error means for the user, as a `HubError` with a code."""
    e = _errors()
    url = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo}"
    if isinstance(exc, e.GatedRepoError) or _status(exc) in (401, 403):
        return HubError(
            f"{repo} is gated: accept its license at {url} with your account, then give this "
            "machine a token (set HF_TOKEN, or run `hf auth login`, which writes the token "
            "file huggingface_hub reads). The studio never stores or shows the token.",
            code="gated_model",
            repo=repo,
            url=url,
        )
    if any(isinstance(c, OSError) and c.errno in (errno.ENOSPC, errno.EDQUOT) for c in _chain(exc)):
        return HubError(
            f"the disk filled up while {repo} downloaded ({cache_dir()}); what arrived stays "
            "in the cache. Free some space and pull again to continue.",
            code="disk_full_during_pull",
            repo=repo,
            cache=str(cache_dir()),
        )
    if isinstance(exc, e.RevisionNotFoundError):
        return HubError(f"{repo} has no such revision: {exc}", code="no_such_revision", repo=repo)
    if isinstance(exc, e.RepositoryNotFoundError) or _status(exc) == 404:
        return HubError(
            f"no {repo_type} {repo} on the Hub (check the spelling: OWNER/NAME), or it is "
            "private and this machine has no token for it",
            code="no_such_repo" if repo_type == "model" else "no_such_hub_dataset",
            repo=repo,
        )
    if isinstance(exc, e.OfflineModeIsEnabled) or _is_connection(exc):
        return HubError(
            f"the Hub cannot be reached ({'HF_HUB_OFFLINE is set' if _offline() else exc}); "
            f"{repo} can only be used if its files are already in the cache "
            f"({cache_dir()}). Connect to the internet and pull again.",
            code="hub_offline",
            repo=repo,
            cache=str(cache_dir()),
        )
    return HubError(f"the Hub answered with an error for {repo}: {exc}", repo=repo)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_connection(exc: BaseException) -> bool:
    names = {type(c).__name__ for c in _chain(exc)}
    return bool(names & {"ConnectError", "ConnectionError", "ConnectTimeout", "ReadTimeout"})


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _repo_folder(repo: str, repo_type: str = "model") -> Path:
    return cache_dir() / (f"{repo_type}s--" + repo.replace("/", "--"))


def check_repo_id(repo: str) -> str:
    """`OWNER/NAME`, as the Hub spells ids; anything else is refused before a request."""
    repo = (repo or "").strip()
    if len(repo.split("/")) != 2 or not _plain_ref(repo):
        raise HubError(
            f"{repo!r} is not a Hub model id: write it as OWNER/NAME (Qwen/Qwen2.5-0.5B)",
            code="bad_repo_id",
            repo=repo,
        )
    return repo


def listing(
    repo: str,
    revision: str | None = None,
    *,
    allow_pickle: bool = False,
    repo_type: str = "model",
) -> Listing:
    """The repository's files at `revision` (default: its main branch) and which a pull
    fetches: every file but the pickles when safetensors weights exist; the pickles too only
    when allowed (refused, with why, when they are the only weights). A dataset's listing
    fetches nothing until its data files are chosen (`data.hub`)."""
    from huggingface_hub import HfApi

    repo = check_repo_id(repo)
    try:
        api = HfApi()
        read = api.dataset_info if repo_type == "dataset" else api.model_info
        info = read(repo, revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - every Hub failure gets its words
        error = hub_error(exc, repo, repo_type)
        cached = _cached_listing(repo, revision, repo_type) if error.code == "hub_offline" else None
        if cached is None:
            raise error from exc
        return cached  # offline, but the files are here: they are used as they are
    if repo_type == "dataset":
        files = [RepoFile(s.rfilename, int(s.size or 0), fetch=False) for s in info.siblings or []]
        commit = info.sha or revision or "main"
        return Listing(repo, commit, files, bool(info.gated), "dataset", revision or "main")
    files = []
    for sibling in info.siblings or []:
        name = sibling.rfilename
        files.append(RepoFile(name, int(sibling.size or 0), pickle=name.endswith(PICKLE_SUFFIXES)))
    has_safetensors = any(f.name.endswith(".safetensors") for f in files)
    for f in files:
        if f.pickle:
            f.fetch = allow_pickle and not has_safetensors
    if not has_safetensors and any(f.pickle for f in files) and not allow_pickle:
        raise HubError(
            f"{repo} has only pickle weights ({', '.join(f.name for f in files if f.pickle)}): "
            "loading a pickle can run code. Allow pickle weights if you trust its author.",
            code="only_pickle_weights",
            repo=repo,
        )
    return Listing(
        repo, info.sha or revision or "main", files, gated=bool(info.gated), ref=revision or "main"
    )


def _plain_ref(name: str) -> bool:
    """A branch, tag or commit written as the Hub writes them (`main`, `v1.0`, `refs/pr/1`):
    nothing that climbs out of the cache's folders."""
    parts = name.split("/")
    return all(p and p not in (".", "..") and all(c.isalnum() or c in "-_." for c in p)
               for p in parts)  # fmt: skip


def _cached_listing(repo: str, revision: str | None, repo_type: str) -> Listing | None:
    """The listing of a snapshot already in the cache (the branch's commit from `refs/`, or
    the commit named), every file in it marked as fetched; None when there is none."""
    if revision is not None and not _plain_ref(revision):
        return None
    folder = _repo_folder(repo, repo_type)
    ref = folder / "refs" / (revision or "main")
    commit = ref.read_text(encoding="utf-8").strip() if ref.is_file() else (revision or "")
    snapshot_dir = folder / "snapshots" / commit if commit else None
    if snapshot_dir is None or not snapshot_dir.is_dir():
        return None
    files = [
        RepoFile(p.relative_to(snapshot_dir).as_posix(), p.stat().st_size)
        for p in sorted(snapshot_dir.rglob("*"))
        if p.is_file()
    ]
    return (
        Listing(repo, commit, files, repo_type=repo_type, ref=revision or "main") if files else None
    )


def _partial_bytes(repo: str, repo_type: str = "model") -> int:
    """Bytes of the repository's downloads under way or stopped (`*.incomplete` blobs)."""
    blobs = _repo_folder(repo, repo_type) / "blobs"
    if not blobs.is_dir():
        return 0
    total = 0
    for path in blobs.glob("*.incomplete"):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def _done_bytes(listing: Listing) -> int:
    return _complete_bytes(listing) + _partial_bytes(listing.repo, listing.repo_type)


def snapshot(listing: Listing) -> Path:
    return _repo_folder(listing.repo, listing.repo_type) / "snapshots" / listing.revision


def missing(listing: Listing) -> list[RepoFile]:
    """The files of the listing not complete in the cache yet."""
    folder = snapshot(listing)
    return [f for f in listing.fetched if not (folder / f.name).is_file()]


def pull(
    listing: Listing,
    *,
    progress: Callable[[PullProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """Fetch the listing's files into the cache; the snapshot folder. A stop (`cancel`)
    ends the download at once and raises `PullStopped`; the bytes that arrived stay and the
    next pull continues from them."""
    todo = missing(listing)
    if not todo:
        _remember_ref(listing)
        return snapshot(listing)
    need = sum(f.size for f in todo) - _partial_bytes(listing.repo, listing.repo_type)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    if need + SPARE_BYTES > free:
        raise HubError(
            f"{listing.repo} needs {need / 2**30:.1f} GiB more in {cache}, which has "
            f"{free / 2**30:.1f} GiB free (and {SPARE_BYTES / 2**30:.0f} GiB is kept spare): "
            "free some space (old checkpoints, exports, other cached models) and pull again",
            code="no_space_for_pull",
            repo=listing.repo,
            need=round(need / 2**30, 1),
            free=round(free / 2**30, 1),
        )
    command = [sys.executable, "-m", "studio.models.hub", listing.repo_type, listing.repo]
    command.append(listing.revision)
    child = subprocess.Popen(  # noqa: S603 - our own module, arguments are checked names
        [*command, *[f.name for f in todo]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    started, total = time.monotonic(), listing.total_bytes
    at_start = _done_bytes(listing)
    try:
        while child.poll() is None:
            if cancel is not None and cancel():
                child.terminate()
                child.wait(timeout=30)
                raise PullStopped(listing.repo)
            if progress is not None:
                done = min(total, _done_bytes(listing))
                seconds = time.monotonic() - started
                progress(PullProgress(done, total, seconds, max(0, done - at_start)))
            time.sleep(POLL_S)
    finally:
        if child.poll() is None:
            child.kill()
    outcome = _outcome(child.stdout.read() if child.stdout else "")
    if child.returncode != 0 or outcome.get("error"):
        error = outcome.get("error") or {}
        params = {"repo": listing.repo, **(error.get("params") or {})}
        raise HubError(
            error.get("message") or f"the download of {listing.repo} failed",
            code=error.get("code") or "hub_error",
            **params,
        )
    if progress is not None:
        progress(PullProgress(total, total, time.monotonic() - started, total - at_start))
    _remember_ref(listing)
    return snapshot(listing)


def _remember_ref(listing: Listing) -> None:
    """`refs/<branch>` -> the commit, as huggingface_hub records a branch it downloaded
    (the files were fetched by commit, which records none): offline, the branch's name then
    still finds them, here and in every other tool."""
    if listing.ref == listing.revision or not _plain_ref(listing.ref):  # a commit, or odd
        return
    refs = _repo_folder(listing.repo, listing.repo_type) / "refs" / listing.ref
    try:
        refs.parent.mkdir(parents=True, exist_ok=True)
        refs.write_text(listing.revision, encoding="utf-8")
    except OSError:
        pass


def _complete_bytes(listing: Listing) -> int:
    folder = snapshot(listing)
    return sum(f.size for f in listing.fetched if (folder / f.name).is_file())


def _outcome(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def cached_models() -> list[str]:
    """Hub models with a complete snapshot in the cache (`OWNER/NAME`), for the pickers."""
    root = cache_dir()
    found = []
    for folder in sorted(root.glob("models--*--*")):
        snapshots = folder / "snapshots"
        if snapshots.is_dir() and any(
            (s / "config.json").is_file() or (s / "adapter_config.json").is_file()
            for s in snapshots.iterdir()
        ):
            found.append(folder.name.removeprefix("models--").replace("--", "/", 1))
    return found


def _download(repo_type: str, repo: str, revision: str, names: list[str]) -> int:
    """The child process: fetch each file (huggingface_hub resumes a partial one)."""
    from huggingface_hub import hf_hub_download

    try:
        for name in names:
            hf_hub_download(repo, name, revision=revision, repo_type=repo_type)
    except Exception as exc:  # noqa: BLE001 - told to the parent as words and a code
        error = hub_error(exc, repo, repo_type)
        told = {"code": error.code, "message": str(error), "params": error.params}
        print(json.dumps({"error": told}, default=str), flush=True)
        return 1
    print(json.dumps({"ok": True}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_download(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
