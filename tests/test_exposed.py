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
