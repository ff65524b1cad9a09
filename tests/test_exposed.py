"""When the studio is reachable from other machines: a password is required, and the browser
cannot make it load models from arbitrary folders."""

import urllib.error
import urllib.request

import pytest

from studio.models.load import ModelLoadError
from tests.conftest import app_process, generate_args


def test_exposed_context_confines_model_folders(tmp_path, workspace):
    import shutil

    from studio.paths import EMBEDDED_MODEL_DIR
    from studio.ui.app import StudioContext, confined_roots

    outside = tmp_path / "outside-model"
    shutil.copytree(EMBEDDED_MODEL_DIR, outside)
    ctx = StudioContext(workspace=workspace, local_roots=confined_roots(workspace))
    with pytest.raises(ModelLoadError, match="outside the allowed folders"):
        ctx.load(str(outside))
    shutil.copytree(EMBEDDED_MODEL_DIR, workspace.models / "inside")
    assert ctx.load("inside").source.name == "inside"
    assert ctx.load("").source.kind == "embedded"
    # A run's final model lives in runs/, which stays loadable by name; a workspace model
    # that is a link out of the workspace does not.
    final = workspace.runs / "20260101-000000-demo" / "final"
    shutil.copytree(EMBEDDED_MODEL_DIR, final)
    assert ctx.load("run:20260101-000000-demo").source.kind == "local"
    (workspace.models / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="outside the allowed folders"):
        ctx.load("escape")
    # On loopback (local_roots=None) the user may load any folder of their own.
    assert StudioContext(workspace=workspace).load(str(outside)).source.kind == "local"


@pytest.mark.client
@pytest.mark.slow
def test_auth_is_enforced(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    env = {"STUDIO_AUTH": "alice:s3cret"}
    with app_process(tmp_path / "ws", tmp_path / "app.log", env=env) as app:  # login page: 200
        url = app["url"]
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False, analytics_enabled=False)
        for path, body in (("config", None), ("gradio_api/call/generate", b'{"data": []}')):
            request = urllib.request.Request(url + path, data=body)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 401, path
        with pytest.raises(ValueError):
            Client(url, auth=("alice", "wrong"), verbose=False, analytics_enabled=False)
        client = Client(url, auth=("alice", "s3cret"), verbose=False, analytics_enabled=False)
        text, _ = client.predict(**generate_args(max_new_tokens=4), api_name="/generate")
        assert text


OUTSIDE_MESSAGE = "outside the allowed folders"


def answer(client, *args, api_name: str) -> str:
    """What an endpoint says: its first output, or the error it raised, as text."""
    try:
        out = client.predict(*args, api_name=api_name)
    except Exception as exc:  # noqa: BLE001 - gr.Error reaches the client as an exception
        return str(exc)
    return str(out[0] if isinstance(out, tuple | list) else out)


@pytest.mark.client
@pytest.mark.slow
def test_an_exposed_app_confines_every_path_a_browser_names(tmp_path):
    """Reachable from other machines (0.0.0.0, with a password): training, checking,
    merging and cleaning refuse a folder or file outside the workspace, with the same
    answer whether or not it exists; inside it they work as before."""
    import shutil

    from gradio_client import Client

    from studio.data.clean import TABLE_HEADERS
    from studio.paths import EMBEDDED_MODEL_DIR
    from tests.conftest import train_form

    outside = tmp_path / "outside-model"
    shutil.copytree(EMBEDDED_MODEL_DIR, outside)
    missing = tmp_path / "no-such-model"
    words = tmp_path / "words.txt"
    words.write_text("禁止語\n", encoding="utf-8")
    env = {"STUDIO_AUTH": "alice:s3cret"}
    ws = tmp_path / "ws"
    with app_process(ws, tmp_path / "app.log", host="0.0.0.0", env=env) as app:
        client = Client(app["url"], auth=("alice", "s3cret"), verbose=False)
        answers = []
        for folder in (outside, missing):
            form = train_form()
            form[2] = str(folder)  # the base model
            message, scan, *_ = client.predict(*form, "en", api_name="/train_check")
            assert OUTSIDE_MESSAGE in scan, scan
            answers.append(scan.replace(str(folder), "X"))
            message, *_ = client.predict(*form, "en", api_name="/train_start")
            assert OUTSIDE_MESSAGE in message, message
            assert OUTSIDE_MESSAGE in answer(
                client, "models", "linear", "float32", [str(folder), "tsumugi-tiny"], "1, 1", "", 0.5, "m",
                "en", api_name="/merge_models",
            )  # fmt: skip
        assert answers[0] == answers[1]  # no existence oracle
        assert not (ws / "runs").is_dir() or not any((ws / "runs").iterdir())
        assert not (ws / "models" / "m").exists()
        for path in (words, tmp_path / "missing.txt", "/etc/hostname"):
            steps = {"headers": TABLE_HEADERS, "data": [[True, "ng_words", f"words_file: {path}"]]}
            said = answer(client, "sample-corpus/v0001", steps, "", 1, True, "en",
                          api_name="/data_clean")  # fmt: skip
            assert OUTSIDE_MESSAGE in said and "禁止語" not in said, said
        # Inside the workspace, the embedded model still trains.
        message, scan, *_ = client.predict(*train_form(), "en", api_name="/train_check")
        assert OUTSIDE_MESSAGE not in scan and "⚠️" not in message
