"""Pulling models from the Hub, against a stand-in: a small HTTP server in the test that
answers the few requests huggingface_hub makes (`HF_ENDPOINT`), and a temporary `HF_HOME`.
No test reaches the real Hub."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import time

import pytest

from studio.ui.data_tab import MAP_FIELDS
from tests.conftest import REPO, child_env

SHA = "0123456789abcdef0123456789abcdef01234567"
MODEL = {
    "config.json": json.dumps({"model_type": "llama"}).encode(),
    "tokenizer.json": b'{"version": "1.0"}',
    "model.safetensors": bytes(range(256)) * 4096,  # 1 MiB
    "pytorch_model.bin": b"pickle" * 1000,
}
PICKLE_ONLY = {"config.json": b"{}", "pytorch_model.bin": b"pickle" * 100}


def _parquet(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def _qa(first: int, n: int) -> list[dict]:
    return [{"質問": f"問{i}", "回答": f"答{i}"} for i in range(first, first + n)]


DATASETS = {
    "org/qa": {  # a Parquet dataset in the Hub's usual layout: two train shards and a test
        "README.md": b"---\nlicense: cc-by-4.0\n---\n",
        "data/train-00000-of-00002.parquet": _parquet(_qa(0, 3)),
        "data/train-00001-of-00002.parquet": _parquet(_qa(3, 2)),
        "data/test-00000-of-00001.parquet": _parquet(_qa(100, 4)),
    },
    "org/chat": {  # configurations as folders, JSON Lines
        "ja/train.jsonl": "\n".join(
            json.dumps({"prompt": f"こんにちは{i}", "completion": f"はい{i}"}, ensure_ascii=False)
            for i in range(3)
        ).encode(),
        "en/train.jsonl": json.dumps({"prompt": "hi", "completion": "hello"}).encode(),
    },
    "org/script": {"script.py": b"print('code')", "README.md": b"# only a script"},
}


class FakeHub:
    """Repositories by id; `gated` ids answer 401/403 as the Hub does; `break_once` files
    are cut after half their bytes on the first download (a lost connection)."""

    def __init__(self):
        self.repos = {"org/tiny": MODEL, "org/old": PICKLE_ONLY, "meta/gated": MODEL}
        self.repos |= {f"datasets/{name}": files for name, files in DATASETS.items()}
        self.gated = {"meta/gated"}
        self.break_once = set()
        self.delay_s = 0.0  # per 64 KiB sent: a slow transfer to stop in the middle
        self.requests: list[str] = []

    def handler(self):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def answer(self, head: bool):
                hub.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?")[0]
                if path.startswith(("/api/models/", "/api/datasets/")):
                    kind, rest = path.removeprefix("/api/").split("/", 1)
                    repo = "/".join(rest.split("/")[:2])
                    repo = f"datasets/{repo}" if kind == "datasets" else repo
                    if repo not in hub.repos:
                        return self.reply(404, b'{"error": "Repository not found"}',
                                          {"X-Error-Code": "RepoNotFound"}, head)  # fmt: skip
                    files = hub.repos[repo]
                    info = {"id": repo.removeprefix("datasets/"), "sha": SHA, "gated": "manual" if repo in hub.gated
                            else False, "private": False,
                            "siblings": [{"rfilename": n, "size": len(b)} for n, b in files.items()]}  # fmt: skip
                    return self.reply(200, json.dumps(info).encode(),
                                      {"Content-Type": "application/json"}, head)  # fmt: skip
                if "/resolve/" in path:
                    repo, rest = path.lstrip("/").split("/resolve/")
                    name = rest.split("/", 1)[1]
                    if repo in hub.gated:
                        return self.reply(403, b'{"error": "gated"}',
                                          {"X-Error-Code": "GatedRepo"}, head)  # fmt: skip
                    data = hub.repos[repo][name]
                    headers = {"X-Repo-Commit": SHA, "Accept-Ranges": "bytes",
                               "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}  # fmt: skip
                    start = 0
                    if self.headers.get("Range") and not head:
                        start = int(self.headers["Range"].split("=")[1].split("-")[0])
                        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    body = data[start:]
                    self.send_response(206 if start else 200)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if head:
                        return None
                    if name in hub.break_once:  # half of it, then the connection drops
                        hub.break_once.discard(name)
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return None
                    for at in range(0, len(body), 65536):
                        self.wfile.write(body[at : at + 65536])
                        if hub.delay_s:
                            time.sleep(hub.delay_s)
                    return None
                return self.reply(404, b"{}", head=head)

            def do_GET(self):
                self.answer(False)

            def do_HEAD(self):
                self.answer(True)

        return Handler


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    hub = FakeHub()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), hub.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "5",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # huggingface_hub reads its endpoint and folders when imported: reload them for this test.
    import importlib

    from huggingface_hub import constants

    importlib.reload(constants)
    hub.env = env
    yield hub
    server.shutdown()
    monkeypatch.undo()  # the environment first: the constants are read from it again
    importlib.reload(constants)


def studio(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=child_env(**env),
    )  # fmt: skip


def test_a_pull_lists_the_files_skips_pickles_and_fills_the_shared_cache(fake_hub, tmp_path):
    from studio.models import hub

    listing = hub.listing("org/tiny")
    assert listing.revision == SHA
    names = {f.name: f for f in listing.files}
    assert names["pytorch_model.bin"].pickle and not names["pytorch_model.bin"].fetch
    assert listing.total_bytes == sum(
        len(b) for n, b in MODEL.items() if n.endswith(("json", "tensors"))
    )
    seen = []
    folder = hub.pull(listing, progress=seen.append)
    assert folder == tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots" / SHA
    assert (folder / "model.safetensors").read_bytes() == MODEL["model.safetensors"]
    assert not (folder / "pytorch_model.bin").exists()
    assert seen and seen[-1].done == seen[-1].total == listing.total_bytes
    assert "MiB" in seen[-1].line()
    # Pulled once: the model is in the cache for every other tool, and a second pull
    # downloads nothing.
    assert "org/tiny" in hub.cached_models()
    before = len(fake_hub.requests)
    assert hub.pull(listing) == folder and len(fake_hub.requests) == before
    # Offline, a pull of what the cache holds answers from the cache.
    import importlib

    from huggingface_hub import constants

    fake_hub.env["HF_HUB_OFFLINE"] = "1"
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    importlib.reload(constants)
    cached = hub.listing("org/tiny")
    assert cached.revision == SHA and hub.pull(cached) == folder
    assert {f.name for f in cached.files} == {"config.json", "tokenizer.json", "model.safetensors"}


def test_the_cli_pulls_with_progress_and_resumes_a_broken_transfer(fake_hub):
    fake_hub.break_once.add("model.safetensors")
    first = studio("model", "pull", "org/tiny", "--json", env=fake_hub.env)
    # huggingface_hub retries a dropped connection from where it stopped (Range), or the
    # pull fails and the next one resumes; either way nothing is fetched twice in full.
    if first.returncode != 0:
        assert json.loads(first.stdout)["error"]["code"]
        first = studio("model", "pull", "org/tiny", "--json", env=fake_hub.env)
    assert first.returncode == 0, first.stderr[-2000:]
    out = json.loads(first.stdout)
    assert out["revision"] == SHA and out["path"].endswith(SHA)
    assert "[pull]" in first.stderr and "skipped: pickle" in first.stderr
    ranged = [r for r in fake_hub.requests if "model.safetensors" in r and r.startswith("GET")]
    assert len(ranged) >= 2  # the cut transfer and its continuation
    listed = studio("model", "pull", "org/tiny", "--list", "--json", env=fake_hub.env)
    assert json.loads(listed.stdout)["total_bytes"] > 1_000_000


def test_a_stopped_pull_keeps_what_arrived_and_the_next_one_continues(fake_hub):
    from studio.models import hub

    fake_hub.delay_s = 0.2  # 1 MiB in 16 slices: about 3 s
    listing = hub.listing("org/tiny")
    seen = []

    def cancel():
        return bool(seen) and seen[-1].done > 0

    with pytest.raises(hub.PullStopped):
        hub.pull(listing, progress=seen.append, cancel=cancel)
    assert hub.missing(listing)  # not complete ...
    assert hub._partial_bytes("org/tiny") > 0 or hub._complete_bytes(listing) > 0  # ... kept
    fake_hub.delay_s = 0.0
    folder = hub.pull(listing)
    assert (folder / "model.safetensors").read_bytes() == MODEL["model.safetensors"]


def test_gated_missing_pickle_only_and_offline_are_said_clearly(fake_hub, monkeypatch):
    from studio.models import hub

    with pytest.raises(hub.HubError) as caught:
        hub.pull(hub.listing("meta/gated"))
    assert caught.value.code == "gated_model"
    said = caught.value.text("ja")
    assert "https://huggingface.co/meta/gated" in said and "HF_TOKEN" in said
    with pytest.raises(hub.HubError) as caught:
        hub.listing("org/nothing")
    assert caught.value.code == "no_such_repo"
    with pytest.raises(hub.HubError) as caught:
        hub.listing("org/old")
    assert caught.value.code == "only_pickle_weights"
    assert [f.name for f in hub.listing("org/old", allow_pickle=True).fetched] == [
        "config.json",
        "pytorch_model.bin",
    ]
    with pytest.raises(hub.HubError) as caught:
        hub.listing("../../etc")
    assert caught.value.code == "bad_repo_id"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import importlib

    from huggingface_hub import constants

    importlib.reload(constants)
    with pytest.raises(hub.HubError) as caught:
        hub.listing("org/tiny")
    assert caught.value.code == "hub_offline" and "HF_HUB_OFFLINE" in str(caught.value)


def test_a_disk_too_small_is_refused_before_anything_downloads(fake_hub, monkeypatch):
    import shutil

    from studio.models import hub

    listing = hub.listing("org/tiny")
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: real(path)._replace(free=listing.total_bytes)
    )
    before = len(fake_hub.requests)
    with pytest.raises(hub.HubError) as caught:
        hub.pull(listing)
    assert caught.value.code == "no_space_for_pull" and "free some space" in str(caught.value)
    assert len(fake_hub.requests) == before  # nothing was asked for


@pytest.mark.client
@pytest.mark.slow
def test_the_model_tab_lists_pulls_and_offers_the_model(fake_hub, tmp_path):
    from gradio_client import Client

    from tests.conftest import app_process

    with app_process(tmp_path / "ws", tmp_path / "app.log", env=fake_hub.env) as app:
        client = Client(app["url"], verbose=False, analytics_enabled=False)
        listed = client.predict("org/tiny", "", False, "en", api_name="/model_pull_list")
        assert "org/tiny" in listed and "skipped (pickle)" in listed and "fetched" in listed
        status, picker = client.predict("org/tiny", "", False, "ja", api_name="/model_pull")
        assert "org/tiny を取得しました" in status
        assert picker["value"] == "org/tiny"
        assert ["org/tiny", "org/tiny"] in picker["choices"]
        with pytest.raises(Exception, match="ゲート付き"):
            client.predict("meta/gated", "", False, "ja", api_name="/model_pull")
        # The Data tab's path field takes a Hub dataset: its files first, then the import.
        found = client.predict(None, "hf:org/qa split=test", "en", api_name="/data_check")
        assert "org/qa" in found[0] and "data/test-00000-of-00001.parquet" in found[0]
        no_map = [None] * len(MAP_FIELDS)
        text = client.predict(None, "hf:org/qa split=test", None, "qa-test", None, False,
                              *no_map, "en", api_name="/data_import")  # fmt: skip
        assert "qa-test/v0001" in text and "4" in text
        with pytest.raises(Exception, match="config="):
            client.predict(None, "hf:org/qa colour=red", "en", api_name="/data_check")
    folder = tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots" / SHA
    assert (folder / "model.safetensors").is_file()


def test_a_hub_dataset_imports_its_split_with_its_origin(fake_hub, workspace):
    from studio.data.hub import import_hub
    from studio.data.store import open_version

    version, report = import_hub(workspace, "hf:org/qa")
    # The train split's two shards as one version, rows in order, the test split left out.
    assert report["rows"] == 5 and version.name == "qa" and version.format == "prompt_completion"
    rows = open_version(workspace, version).to_list()
    assert [r["prompt"] for r in rows] == [f"問{i}" for i in range(5)]
    assert len({r["id"] for r in rows}) == 5
    origin = version.to_dict()["settings"]["origin"]
    assert origin["hub"] == "org/qa" and origin["revision"] == SHA
    assert origin["files"] == ["data/train-00000-of-00002.parquet",
                               "data/train-00001-of-00002.parquet"]  # fmt: skip
    test, _ = import_hub(workspace, "hf:org/qa", split="test", name="qa-test")
    assert test.rows == 4
    chat, report = import_hub(workspace, "hf:org/chat", config="ja")
    assert chat.rows == 3 and report["origin"]["files"] == ["ja/train.jsonl"]


def test_the_cli_imports_from_the_hub_and_names_what_it_cannot_read(fake_hub, workspace):
    root = str(workspace.root)
    done = studio("data", "import", "hf:org/chat", "--config", "en", "--json",
                  "--workspace", root, env=fake_hub.env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["report"]["rows"] == 1 and out["manifest"]["settings"]["origin"]["config"] == "en"
    assert "[pull]" in done.stderr
    script = studio("data", "import", "hf:org/script", "--json", "--workspace", root,
                    env=fake_hub.env)  # fmt: skip
    assert script.returncode == 1
    error = json.loads(script.stdout)["error"]
    assert error["code"] == "no_data_files" and "script.py" in error["message"]
    missing = studio("data", "import", "hf:org/none", "--json", "--workspace", root,
                     env=fake_hub.env)  # fmt: skip
    assert json.loads(missing.stdout)["error"]["code"] == "no_such_hub_dataset"


def test_a_disk_that_fills_during_a_pull_is_said_as_such(fake_hub):
    import errno

    from studio.models import hub

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("download failed") from inner
    except RuntimeError as exc:
        error = hub.hub_error(exc, "org/tiny")
    assert error.code == "disk_full_during_pull" and "pull again" in str(error)
    assert "空き" in error.text("ja")
