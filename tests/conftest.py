"""Shared fixtures. Tests run offline, on one torch thread, on the embedded model."""

from __future__ import annotations

import os

# Before anything imports torch, transformers or gradio.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import contextlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", REPO / "test-artifacts"))
# Waits poll for their condition and end as soon as it holds; their ceilings are sized for a
# busy machine (a shared 2-core box at load 10-15 ran pages several times slower than alone).
# STUDIO_TEST_SLOWNESS scales every ceiling of the browser tests.
SLOWNESS = float(os.environ.get("STUDIO_TEST_SLOWNESS", "4"))


def ms(seconds: float) -> int:
    """A browser wait's ceiling in milliseconds: `seconds` on an idle machine, times
    SLOWNESS."""
    return int(seconds * 1000 * SLOWNESS)


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def kill_training(runs_dir: Path) -> None:
    """Training processes a test started run in their own session and outlive the test when
    it fails: kill whatever still trains in this workspace, so it cannot slow later tests."""
    import signal

    from studio.runs.store import Run

    if not runs_dir.is_dir():
        return
    ours = os.getpgid(0)  # runs trained inside this process record our own group: spare it
    for root in runs_dir.iterdir():
        run = Run(root)
        groups = {run.status().get("pgid"), (run.json_of(run.process_path) or {}).get("pid")}
        for group in groups - {None, ours}:
            with contextlib.suppress(OSError, TypeError, ValueError):
                os.killpg(int(group), signal.SIGKILL)


@pytest.fixture
def workspace(tmp_path):
    from studio.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    yield ws
    kill_training(ws.runs)


@pytest.fixture(scope="session")
def embedded():
    """The embedded model, loaded once for the whole session."""
    from studio.models.load import load_model, resolve_source

    return load_model(resolve_source(""))


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra) -> dict:
    env = dict(os.environ)
    env.pop("STUDIO_AUTH", None)
    env.update(extra)
    return env


def generate_args(**overrides) -> dict:
    """Arguments of the app's `/generate` endpoint as a client sends them (see model_tab)."""
    from studio.generate import GenerationSettings

    d = GenerationSettings()
    args = dict(
        model="tsumugi-tiny",
        trust_remote_code=False,
        prompt="富士山は",
        chat=False,
        system="",
        max_new_tokens=d.max_new_tokens,
        temperature=d.temperature,
        top_p=d.top_p,
        repetition_penalty=d.repetition_penalty,
        seed=d.seed,
        greedy=d.greedy,
        lang="en",
    )
    return args | overrides


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def app_process(ws: Path, log_path: Path, timeout: float = 90, *, host: str = "127.0.0.1",
                env: dict | None = None):  # fmt: skip
    """`python app.py` as a user starts it, on a free port of `host` (loopback unless told)
    and workspace `ws`; `proc` is the app's process (tests kill it to restart the app)."""
    port = free_port()
    command = [
        sys.executable,
        "app.py",
        "--no-browser",
        "--port",
        str(port),
        "--workspace",
        str(ws),
    ]
    if host != "127.0.0.1":
        command += ["--host", host]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=child_env(**(env or {}))
        )
    url = f"http://{host}:{port}/"
    try:
        startup = wait_for_http(url, proc, timeout=timeout)
    except Exception:
        proc.kill()
        raise RuntimeError(log_path.read_text(errors="replace")) from None
    try:
        yield {
            "url": url,
            "workspace": ws,
            "startup_seconds": startup,
            "log": log_path,
            "proc": proc,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def fresh_app(tmp_path_factory, name: str):
    """An app of the test module's own on a new workspace; whatever it trains is killed
    afterwards."""
    ws = tmp_path_factory.mktemp(f"{name}-ws")
    with app_process(ws, tmp_path_factory.mktemp(f"{name}-log") / "app.log") as app:
        yield app
        kill_training(ws / "runs")


@pytest.fixture(scope="session")
def running_app(tmp_path_factory):
    """`python app.py` as a user starts it, on a free loopback port and a fresh workspace."""
    with fresh_app(tmp_path_factory, "app") as app:
        yield app


def train_form(**changes) -> list:
    """The Train tab's inputs (`/train_start`, `/train_check`) for the CPU demo preset, with
    some fields changed."""
    from studio.train import presets
    from studio.ui.train_tab import FIELDS, form_values

    assert set(changes) <= set(FIELDS), f"not fields of the form: {set(changes) - set(FIELDS)}"
    config, _ = presets.load("cpu-demo-sft")
    values = dict(zip(FIELDS, form_values(config), strict=True)) | changes
    head = ["cpu-demo-sft", "sample-chat-ojousama/v0001", "tsumugi-tiny", "(preset)"]
    return head + [values[f] for f in FIELDS]


def wait_until(predicate, timeout=120, poll=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    raise TimeoutError("condition not reached")


def wait_state(client, run_id, states, timeout=300):
    """Poll the Train tab's `/train_status` until the run is in one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, _ = client.predict(
            run_id, 0.0, "loss", "step", "linear", "en", api_name="/train_status"
        )
        for state in states:
            if f'data-state="{state}"' in status:
                return status
        time.sleep(0.5)
    raise TimeoutError(f"{run_id} never reached {states}")


def make_adapter(folder: Path, seed: int, r: int = 4) -> Path:
    """A LoRA adapter over the embedded model with random (non-zero) weights, saved with the
    tokenizer the way a run's checkpoint is: a distinct model in seconds, without training."""
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.models.load import load_model, resolve_source

    base = load_model(resolve_source(""))  # a fresh copy: peft changes the model in place
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base.model, config)
    model.save_pretrained(folder)
    base.tokenizer.save_pretrained(folder)
    return folder
