import json

import pytest

from studio.data.registry import add_version, list_datasets, list_eval_suites
from studio.data.samples import SAMPLES
from studio.paths import SAMPLE_DATA_DIR
from studio.workspace import ENV_VAR, WorkspaceError, open_workspace, resolve_workspace_path


def test_first_open_creates_layout_and_registers_samples(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    for sub in ("datasets", "runs", "models", "evals"):
        assert (ws.root / sub).is_dir()
    names = {d.name: d for d in list_datasets(ws)}
    assert set(names) == {
        "sample-corpus",
        "sample-chat-ojousama",
        "sample-qa",
        "sample-pref-ojousama",
        "teaching-chat-broken",
    }
    assert (ws.root / "profiles" / "seed-004-broken.yaml").is_file()
    assert names["sample-corpus"].format == "text"
    assert names["sample-chat-ojousama"].format == "messages"
    assert names["sample-qa"].format == "prompt_completion"
    assert names["sample-pref-ojousama"].format == "preference"
    with open(SAMPLE_DATA_DIR / "corpus.jsonl", encoding="utf-8") as fh:
        assert names["sample-corpus"].rows == sum(1 for line in fh if line.strip())
    suites = {s.name: s for s in list_eval_suites(ws)}
    assert suites["sample-eval-qa"].rows == 50
    assert suites["sample-eval-rank"].rows == 50
    assert (suites["sample-eval-qa"].path / "shots.jsonl").is_file()
    assert ws.meta()["samples_registered"] is True


def test_samples_are_copies_and_assets_untouched(tmp_path):
    ws = open_workspace(tmp_path / "ws")
    corpus = next(d for d in list_datasets(ws) if d.name == "sample-corpus")
    copied = corpus.path / "data.jsonl"
    assert copied.read_bytes() == (SAMPLE_DATA_DIR / "corpus.jsonl").read_bytes()
    assert not copied.samefile(SAMPLE_DATA_DIR / "corpus.jsonl")
    manifest = json.loads((corpus.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["operation"] == "bundled-sample"
    assert manifest["parent"] is None
    assert len(manifest["sha256"]["data.jsonl"]) == 64


def test_reopening_is_idempotent_and_respects_deletions(tmp_path):
    import shutil

    ws = open_workspace(tmp_path / "ws")
    count = len(list_datasets(ws))
    shutil.rmtree(ws.datasets / "sample-qa")
    ws2 = open_workspace(tmp_path / "ws")
    assert len(list_datasets(ws2)) == count - 1  # not re-added behind the user's back


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "from-env"))
    assert resolve_workspace_path() == (tmp_path / "from-env").resolve()
    assert resolve_workspace_path(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.chdir(tmp_path)
    assert resolve_workspace_path() == (tmp_path / "workspace").resolve()


def test_a_file_in_the_way_is_a_clear_error(tmp_path):
    (tmp_path / "ws").write_text("not a folder")
    with pytest.raises(WorkspaceError, match="not a folder"):
        open_workspace(tmp_path / "ws")


def test_versions_increment_and_never_overwrite(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    store = tmp_path / "store"
    v1 = add_version(store, "mine", {"data.jsonl": src}, format="text", operation="import")
    src.write_text('{"text": "c"}\n', encoding="utf-8")
    v2 = add_version(
        store, "mine", {"data.jsonl": src}, format="text", operation="clean", parent=v1.version
    )
    assert (v1.version, v1.rows, v2.version, v2.rows) == ("v0001", 2, "v0002", 1)
    assert v2.parent == "v0001"
    assert (v1.path / "data.jsonl").read_text(encoding="utf-8").count("\n") == 2
    assert not list((store / "mine").glob(".incoming-*"))


def test_failed_copy_leaves_no_partial_version(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(FileNotFoundError):
        add_version(
            store,
            "x",
            {"data.jsonl": tmp_path / "missing.jsonl"},
            format="text",
            operation="import",
        )
    assert list((store / "x").iterdir()) == []


def test_unsafe_dataset_name_rejected(tmp_path):
    from studio.safety import UnsafeInputError

    src = tmp_path / "d.jsonl"
    src.write_text("{}\n")
    with pytest.raises(UnsafeInputError):
        add_version(tmp_path, "../escape", {"data.jsonl": src}, format="text", operation="import")
    assert not (tmp_path.parent / "escape").exists()


def test_sample_table_matches_assets():
    for _, _, _, files in SAMPLES:
        for src in files.values():
            assert (SAMPLE_DATA_DIR / src).is_file(), src
