"""Datasets from the Hugging Face Hub (`hf:OWNER/NAME`): the repository's Parquet or JSON
files of one configuration and split, pulled into huggingface_hub's cache with progress, stop
and resume (`models.hub.pull`), then imported like a file (format detection, column mapping,
line-numbered errors) as one dataset version whose manifest names the repository, the commit
and the files. Dataset loading scripts are never run (they are code): only data files are
read.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import PurePosixPath

from studio.models import hub

PREFIX = "hf:"
DATA_SUFFIXES = (".parquet", ".jsonl", ".json")
NOT_DATA = {"dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json"}


def is_hub(spec: str) -> bool:
    return str(spec).startswith(PREFIX)


def parse_spec(text: str) -> tuple[str, dict]:
    """`hf:OWNER/NAME config=C split=S revision=R` (what the Data tab's path field takes) ->
    (`hf:OWNER/NAME`, the options given)."""
    spec, *words = str(text).split()
    options = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in ("config", "split", "revision") or not value:
            raise hub.HubError(
                f"{word!r}: after hf:OWNER/NAME write config=..., split=... or revision=...",
                code="bad_hub_option",
                word=word,
            )
        options[key] = value
    return spec, options


def _has(name: str, word: str) -> bool:
    """Whether a path names `word` as a folder, a file stem or a part of one
    (`data/train-00000-of-00002.parquet`, `ja/train.jsonl`, `train/0000.parquet`)."""
    return re.search(rf"(^|[/_.-]){re.escape(word)}([/_.-]|$)", name) is not None


def data_files(
    listing: hub.Listing, config: str | None = None, split: str | None = None
) -> list[hub.RepoFile]:
    """The data files of one configuration and split, of one kind (Parquet first): the
    split named, else `train` when the repository has one, else every data file."""
    files = [
        f
        for f in listing.files
        if f.name.lower().endswith(DATA_SUFFIXES)
        and PurePosixPath(f.name).name not in NOT_DATA
        and not any(part.startswith(".") for part in PurePosixPath(f.name).parts)
    ]
    if config:
        files = [f for f in files if config in PurePosixPath(f.name).parts[:-1]]
    wanted = split or ("train" if any(_has(f.name, "train") for f in files) else None)
    if wanted:
        files = [f for f in files if _has(f.name, wanted)]
    if not files:
        known = ", ".join(f.name for f in listing.files[:20]) or "none"
        raise hub.HubError(
            f"{listing.repo} has no Parquet or JSON data files"
            + (f" for config {config}" if config else "")
            + (f" and split {wanted}" if wanted else "")
            + f" (its files: {known}). Name another --config or --split; datasets that only "
            "have a loading script are not read (the script would run code).",
            code="no_data_files",
            repo=listing.repo,
            known=known,
        )
    kinds = Counter(PurePosixPath(f.name).suffix.lower() for f in files)
    kind = ".parquet" if ".parquet" in kinds else kinds.most_common(1)[0][0]
    return sorted((f for f in files if f.name.lower().endswith(kind)), key=lambda f: f.name)


def plan(
    spec: str, *, config: str | None = None, split: str | None = None, revision: str | None = None
) -> hub.Listing:
    """The dataset repository named by `spec` (`hf:OWNER/NAME`) with its chosen data files
    marked for fetching."""
    repo = str(spec).removeprefix(PREFIX)
    listing = hub.listing(repo, revision, repo_type="dataset")
    chosen = {f.name for f in data_files(listing, config, split)}
    for f in listing.files:
        f.fetch = f.name in chosen
    return listing


def import_hub(
    ws,
    spec: str,
    *,
    config: str | None = None,
    split: str | None = None,
    revision: str | None = None,
    name: str | None = None,
    layout: str | None = None,
    mapping: dict | None = None,
    skip_bad: bool = False,
    progress=None,
    cancel=None,
):
    """Pull the data files of `spec` and import them as the next version of dataset `name`
    (default: the repository's name). Returns (version, report), as `import_path` does."""
    from studio.data.ingest import import_path

    listing = plan(spec, config=config, split=split, revision=revision)
    folder = hub.pull(listing, progress=progress, cancel=cancel)
    files = [folder / f.name for f in listing.fetched]
    origin = {
        "hub": listing.repo,
        "revision": listing.revision,
        "config": config,
        "split": split,
        "files": [f.name for f in listing.fetched],
    }
    version, report = import_path(
        ws,
        files[0],
        name=name or listing.repo.split("/")[1],
        layout=layout,
        mapping=mapping,
        skip_bad=skip_bad,
        source=f"{PREFIX}{listing.repo}@{listing.revision[:12]}",
        more=files[1:],
        origin=origin,
    )
    report["origin"] = origin
    return version, report
