"""Security checks (issue 10): where the app listens, what an exposed app lets a browser
reach, `trust_remote_code` off by default everywhere, and no pickle from the user's files.

The refusal of a public bind without a password is tested in test_launcher.py (the real
launcher) and the login itself in test_exposed.py; they are not repeated here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import pickle
import shutil
import socket
from pathlib import Path

import pytest

from tests.conftest import REPO, app_process

AUTH = ("alice", "s3cret-pass")
SECRET = "content-no-browser-may-read-7f3a"


class _Booby:
    """Unpickling this creates `path`: proof that a pickle was loaded without restriction."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _public_address() -> str | None:
    """An address of this machine that other machines could reach (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent for UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


# --- where the app listens -------------------------------------------------------------------


@pytest.mark.client
@pytest.mark.slow
def test_the_app_listens_on_loopback_only(running_app):
    import psutil

    port = int(running_app["url"].rsplit(":", 1)[1].strip("/"))
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    ]
    assert listening, "the app's listening socket was not found"
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}
    address = _public_address()
    if address is not None:  # and it really cannot be reached on the machine's address
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass


# --- an app reachable from other machines ----------------------------------------------------


@pytest.fixture(scope="module")
def exposed_app(tmp_path_factory):
    """`python app.py --host <this machine's address> --auth ...`: the studio as someone
    serves it to their LAN, with a sentinel folder beside its workspace."""
    address = _public_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    root = tmp_path_factory.mktemp("exposed")
    ws, outside = root / "ws", root / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(json.dumps({"text": SECRET}) + "\n", encoding="utf-8")
    shutil.copytree(REPO / "assets" / "models" / "tsumugi-tiny", outside / "model")
    log = root / "app.log"
    env = {"STUDIO_AUTH": ":".join(AUTH)}
    with app_process(ws, log, host=address, env=env) as app:
        # Links inside the workspace that lead out of it.
        (ws / "datasets" / "link.jsonl").symlink_to(outside / "secret.jsonl")
        (ws / "models" / "escape").symlink_to(outside / "model", target_is_directory=True)
        yield {"url": app["url"], "ws": ws, "outside": outside, "log": log}


@pytest.fixture(scope="module")
def exposed_client(exposed_app):
    from gradio_client import Client

    return Client(exposed_app["url"], auth=AUTH, analytics_enabled=False, verbose=False)


def _refused(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        call()
    message = str(raised.value)
    assert "Traceback" not in message
    return message


@pytest.mark.client
@pytest.mark.slow
def test_exposed_app_confines_path_parameters(exposed_app, exposed_client):
    outside, ws = exposed_app["outside"], exposed_app["ws"]
    before = sorted(p.name for p in outside.rglob("*"))

    def check(typed):
        return lambda: exposed_client.predict(None, typed, "en", api_name="/data_check")

    for typed in (
        str(outside / "secret.jsonl"),  # absolute
        str(ws / ".." / "outside" / "secret.jsonl"),  # climbing out with ..
        "../" * 12 + str(outside / "secret.jsonl").lstrip("/"),  # relative to the app's cwd
        str(ws / "datasets" / "link.jsonl"),  # a link inside the workspace
    ):
        assert "outside the allowed folders" in _refused(check(typed)), typed
    for model in (str(outside / "model"), str(ws / "models" / "escape" / ".." / ".." / "..")):
        message = _refused(
            lambda m=model: exposed_client.predict(
                model=m, trust_remote_code=False, lang="en", api_name="/load_model"
            )
        )
        assert "outside the allowed folders" in message or "neither a model folder" in message
    hist, _, warning, *_ = exposed_client.predict(
        str(outside / "model"), None, "hi", [], [], "", 4, True, 0.7, 0.9, 0, 1.0, 0, "en",
        api_name="/chat",
    )  # fmt: skip
    assert hist == [] and "outside the allowed folders" in warning
    assert sorted(p.name for p in outside.rglob("*")) == before


@pytest.mark.client
@pytest.mark.slow
def test_exposed_app_does_not_follow_a_model_link_out_of_the_workspace(exposed_client):
    message = _refused(
        lambda: exposed_client.predict(
            model="escape", trust_remote_code=False, lang="en", api_name="/load_model"
        )
    )
    assert "outside" in message


@pytest.mark.client
@pytest.mark.slow
def test_exposed_app_file_routes_serve_nothing_outside(exposed_app):
    import httpx

    with httpx.Client(base_url=exposed_app["url"], timeout=10) as http:
        login = {"username": AUTH[0], "password": AUTH[1]}
        assert http.post("login", data=login).is_success
        assert http.get("config").status_code == 200  # logged in
        targets = [
            exposed_app["outside"] / "secret.jsonl",
            exposed_app["ws"] / "datasets" / "link.jsonl",
            exposed_app["ws"] / "workspace.json",
            REPO / "app.py",
        ]
        for target in targets:
            for route in (f"gradio_api/file={target}", f"file={target}"):
                answer = http.get(route)
                assert answer.status_code in (403, 404), (route, answer.status_code)
                assert SECRET.encode() not in answer.content and b"def main" not in answer.content
        # An upload payload naming a server file that was never uploaded is refused.
        body = {"data": [{"path": str(targets[0]), "meta": {"_type": "gradio.FileData"}}, "", "en"]}
        event = http.post("gradio_api/call/data_check", json=body).json()["event_id"]
        answer = http.get(f"gradio_api/call/data_check/{event}").text
        assert "event: error" in answer and "not uploaded by a user" in answer
        assert SECRET not in answer


# --- trust_remote_code is off unless the user turns it on ------------------------------------


def _parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_trust_remote_code_is_off_by_default_in_configs_and_functions():
    from studio.labels.inspect import load_target
    from studio.models.load import load_model, load_tokenizer
    from studio.models.pool import ModelPool, pool_opener
    from studio.train.config import RunConfig

    assert RunConfig().trust_remote_code is False
    assert RunConfig.from_dict({}).trust_remote_code is False
    assert RunConfig().allow_pickle is False
    for func in (load_model, load_tokenizer, load_target, pool_opener, ModelPool.use):
        default = inspect.signature(func).parameters["trust_remote_code"].default
        assert default is False, func.__qualname__
    assert inspect.signature(load_model).parameters["allow_pickle"].default is False


def test_trust_remote_code_flags_are_opt_in():
    from studio.cli import build_parser

    flags = [
        (parser.prog, action)
        for parser in _parsers(build_parser())
        for action in parser._actions
        if action.dest in {"trust_remote_code", "allow_pickle"}
    ]
    progs = {prog for prog, action in flags if action.dest == "trust_remote_code"}
    assert {"python -m studio model info", "python -m studio generate"} <= progs
    assert "python -m studio eval" in progs and "python -m studio inspect" in progs
    for prog, action in flags:
        assert action.default is False and action.const is True and not action.required, prog
    parsed = build_parser().parse_args(["generate", "--prompt", "x"])
    assert parsed.trust_remote_code is False and parsed.allow_pickle is False


def test_loading_passes_trust_remote_code_false(monkeypatch):
    """What reaches transformers when nothing was chosen: trust_remote_code=False."""
    import transformers

    from studio.labels.inspect import load_target
    from studio.models.load import load_model, resolve_source

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append((klass.__name__, kwargs.get("trust_remote_code", "missing")))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_model(resolve_source(""))
    load_target(resolve_source(""))
    assert seen and all(value is False for _, value in seen), seen


@pytest.mark.client
@pytest.mark.slow
def test_ui_checkbox_for_remote_code_starts_unticked(running_app):
    import urllib.request

    with urllib.request.urlopen(running_app["url"] + "config", timeout=10) as resp:
        config = json.loads(resp.read())
    boxes = [
        c["props"]
        for c in config["components"]
        if c.get("type") == "checkbox" and "trust" in str(c["props"].get("elem_id", ""))
    ]
    assert boxes and all(box["value"] is False for box in boxes)


# --- no pickle from the user's files ---------------------------------------------------------


@pytest.fixture
def unpickling(monkeypatch):
    """Every torch.load / pickle.load / pickle.loads while the test runs, with whether
    torch.load restricted itself to tensors (weights_only)."""
    import torch

    calls = []
    original_torch_load = torch.load

    def torch_load(*args, **kwargs):
        calls.append(("torch.load", str(args[0]) if args else "", kwargs.get("weights_only")))
        return original_torch_load(*args, **kwargs)

    def recording(name, original):
        def wrapper(*args, **kwargs):
            calls.append((name, repr(args[0])[:80] if args else "", None))
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(torch, "load", torch_load)
    monkeypatch.setattr(pickle, "load", recording("pickle.load", pickle.load))
    monkeypatch.setattr(pickle, "loads", recording("pickle.loads", pickle.loads))
    return calls


def test_loading_from_the_workspace_unpickles_nothing(tmp_path, workspace, unpickling):
    """Models, adapters, checkpoints, dataset versions and the inspector's rows are read
    without unpickling anything."""
    from studio.data.ingest import import_path
    from studio.data.records import iter_records
    from studio.data.store import open_version
    from studio.labels.inspect import load_target
    from studio.models.load import load_model, resolve_source
    from studio.models.pool import ModelPool, pool_opener
    from tests.conftest import make_adapter

    adapter = make_adapter(workspace.models / "my-adapter", seed=3)
    unpickling.clear()  # building the adapter is not part of what is checked
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "富士山"}) + "\n", encoding="utf-8")
    version, _ = import_path(workspace, rows)
    assert open_version(workspace, version)[0]["text"] == "富士山"
    assert [r.data["text"] for r in iter_records(rows)] == ["富士山"]
    load_model(resolve_source(""))
    load_target(resolve_source(""))
    opener = pool_opener(workspace, ModelPool())
    with opener("my-adapter", base="tsumugi-tiny") as loaded:
        assert loaded.extra.get("adapter")
    assert adapter.is_dir()
    assert unpickling == [], unpickling


def test_resume_reads_checkpoint_state_with_weights_only(tmp_path, unpickling):
    """What transformers' resume path does with a checkpoint's optimizer, scheduler, RNG and
    scaler files (pickles by nature): torch.load(..., weights_only=True), so a booby-trapped
    file is refused, not run."""
    import torch
    from transformers import Trainer, TrainingArguments

    from studio.models.load import load_model, resolve_source

    pwned = tmp_path / "PWNED"
    checkpoint = tmp_path / "checkpoint-1"
    checkpoint.mkdir()
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt"):
        torch.save({"state": _Booby(pwned)}, checkpoint / name)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", bf16=False
    )
    trainer = Trainer(model=load_model(resolve_source("")).model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=2)
    unpickling.clear()
    with pytest.raises(pickle.UnpicklingError):
        trainer._load_optimizer_and_scheduler(str(checkpoint))
    with contextlib.suppress(pickle.UnpicklingError):  # transformers may warn instead
        trainer._load_rng_state(str(checkpoint))
    loads = [c for c in unpickling if c[0] == "torch.load"]
    assert {Path(c[1]).name for c in loads} >= {"optimizer.pt", "rng_state.pth"}
    assert all(c[2] is True for c in loads), loads
    assert not pwned.exists()


def test_pickle_weights_load_only_with_the_explicit_opt_in(embedded, tmp_path, capsys):
    """`--allow-pickle` reaches the model pool: a plain pickle state dict then loads (with
    torch's weights-only unpickler) and generates; without it the folder is refused."""
    from tests.test_cli import run_cli

    folder = tmp_path / "pickled"
    import torch

    embedded.model.save_pretrained(folder)  # transformers 5 writes safetensors only:
    embedded.tokenizer.save_pretrained(folder)
    for weights in folder.glob("*.safetensors"):  # turn it into an old pickle checkpoint
        weights.unlink()
    torch.save(embedded.model.state_dict(), folder / "pytorch_model.bin")
    assert (folder / "pytorch_model.bin").is_file()
    assert not list(folder.glob("*.safetensors"))
    args = ["generate", "--model", str(folder), "--prompt", "富士山は", "--max-new-tokens", "4",
            "--workspace", str(tmp_path / "ws"), "--json"]  # fmt: skip
    code, out = run_cli(capsys, *args)
    assert code == 1 and "pickle" in out["error"]["message"]
    code, out = run_cli(capsys, *args, "--allow-pickle")
    assert code == 0 and out["ok"], out
