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


# Every named endpoint of the app, classified by the arguments that name something on the
# server (argument index -> what). A new endpoint fails the guard below until it is listed.
MODEL_ARGS = {  # a model folder, a run's model or an adapter
    "/load_model": [0], "/generate": [0], "/data_stats": [1], "/inspect_scan": [1],
    "/inspect_row": [1], "/inspect_apply_fixes": [1], "/inspect_repair_data": [1],
    "/train_check": [2], "/train_start": [2], "/compare_models": [0], "/chat": [0, 1],
    "/merge_models": [3, 5], "/evaluate": [1], "/synth_start": [1],
}  # fmt: skip
FILE_ARGS = {"/data_check": [1], "/data_import": [1]}  # a data file typed as a server path
UPLOAD_ARGS = {  # gradio file data: only the app's own upload cache
    "/data_check": [0], "/data_import": [0], "/inspect_upload": [0], "/evaluate_upload": [0],
}  # fmt: skip
NAME_ARGS = {  # things in the workspace, by name: a path is not a name
    "/data_preview": [0], "/data_stats": [0], "/data_clean": [0], "/data_dedup": [0],
    "/data_classifier_train": [0, 1], "/data_classifier_score": [0, 1], "/data_classify": [0, 1],
    "/data_cluster": [0], "/data_export": [0], "/data_split": [0], "/data_delete": [0],
    "/data_import": [3], "/tokens_remove": [0], "/inspect_scan": [0], "/inspect_row": [0],
    "/inspect_apply_fixes": [0, 2], "/inspect_repair_data": [0], "/train_check": [1, 3],
    "/train_start": [0, 1, 3], "/train_stop": [0], "/train_resume": [0], "/train_status": [0],
    "/runs_compare": [0], "/runs_export_png": [0], "/runs_export_csv": [0], "/runs_rename": [0],
    "/runs_note": [0], "/runs_delete": [0], "/chat_save_dataset": [3], "/export_run": [0, 3],
    "/merge_models": [7], "/evaluate": [0, 2], "/evaluate_show": [0], "/evaluate_upload": [1],
    "/evaluate_create": [1], "/synth_start": [0], "/synth_stop": [0], "/synth_resume": [0],
    "/synth_status": [0], "/compare_save_preference": [0], "/chat_save_preference": [0],
    "/export_gguf": [0, 2],
}  # fmt: skip
NOTHING = {  # no argument names anything on the server
    "/guide_sample", "/guide_clean", "/guide_inspect", "/guide_compare", "/guide_chat",
    "/guide_evaluate", "/guide_export", "/guide_train", "/data_balance", "/tokens_list",
    "/tokens_cap", "/runs_history", "/unload_models", "/chat_export", "/evaluate_demo",
    "/evaluate_export_csv",
    "/model_pull_list", "/model_pull",  # a Hub id, refused unless it reads OWNER/NAME
    # marking a grid's row or a chat's last turn: model names only look up replies on view
    "/compare_mark_1", "/compare_mark_2", "/compare_mark_tie",
    "/chat_mark_1", "/chat_mark_2", "/chat_mark_tie",
    "/export_ollama",  # registers the export just made (server-side state), nothing named
}  # fmt: skip
REFUSED = (  # what a refusal says, by kind
    OUTSIDE_MESSAGE, "is not a valid name", "not in the list of choices", "no dataset",
    "no token store", "No run yet", "no run", "No such run", "not found", "no evaluation suite",
)  # fmt: skip


@pytest.mark.client
@pytest.mark.slow
def test_every_endpoint_that_names_a_path_confines_it(tmp_path):
    """The guard: the app's endpoints are listed above with every argument that names a
    folder, a file or a stored thing. Each such argument, given a real folder outside the
    workspace and a missing one, is refused with the same answer (no existence oracle), and
    nothing is read from or written outside the workspace. Server paths posing as uploads
    are refused by gradio."""
    import http.cookiejar
    import json
    import re
    import shutil
    import urllib.parse
    import urllib.request

    from gradio_client import Client, handle_file

    from studio.paths import EMBEDDED_MODEL_DIR
    from tests.conftest import REPO

    outside = tmp_path / "outside"
    shutil.copytree(EMBEDDED_MODEL_DIR, outside)
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"text": "秘密の文書"}\n', encoding="utf-8")
    ws = tmp_path / "ws"
    with app_process(ws, tmp_path / "app.log", host="0.0.0.0", env={"STUDIO_AUTH": "u:p"}) as app:
        client = Client(app["url"], auth=("u", "p"), verbose=False, analytics_enabled=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        listed = set(MODEL_ARGS) | set(FILE_ARGS) | set(UPLOAD_ARGS) | set(NAME_ARGS) | NOTHING
        assert set(api) == listed, {"not classified": set(api) - listed, "gone": listed - set(api)}
        before = sorted(p.name for p in tmp_path.iterdir())
        inside = ws / "inside.jsonl"
        inside.write_text('{"text": "中の文書"}\n', encoding="utf-8")

        def call(name: str, index: int, value: str) -> str:
            args = [p.get("parameter_default") for p in api[name]["parameters"]]
            args[index] = [value] if isinstance(args[index], list) else value
            if name == "/chat":
                args[2] = "こんにちは"
            if name == "/evaluate" and index != 0:
                args[0] = ["sample-eval-qa"]
            if name == "/data_import" and index == 3:  # a file the workspace holds
                args[1] = str(inside)
            if name == "/chat_save_dataset":  # a conversation to save
                args[0] = [
                    {"role": role, "content": [{"type": "text", "text": text}]}
                    for role, text in (("user", "こんにちは"), ("assistant", "ごきげんよう"))
                ]
            if name == "/evaluate_upload":  # a real suite file, uploaded
                args[0] = handle_file(str(REPO / "assets" / "data" / "eval_qa.jsonl"))
            if name == "/evaluate_create":
                args[0] = (REPO / "assets" / "data" / "eval_qa.jsonl").read_text("utf-8")
            if name in ("/data_delete", "/runs_delete"):  # confirmed, as a user would
                args[1] = value
            if name in ("/data_classifier_score", "/data_classify") and index == 0:
                args[1] = "some-classifier"
            if name == "/merge_models":  # two sources, so the paths are what is judged
                args[0], args[3] = (
                    "models",
                    [value if index == 3 else "tsumugi-tiny", "tsumugi-tiny"],
                )
            try:  # everything it answered, or the error it raised
                return str(client.predict(*args, api_name=name))
            except Exception as exc:  # noqa: BLE001 - gr.Error reaches the client this way
                return str(exc)

        cases = [(n, i, "model") for n, idx in MODEL_ARGS.items() for i in idx]
        cases += [(n, i, "file") for n, idx in FILE_ARGS.items() for i in idx]
        cases += [(n, i, "name") for n, idx in NAME_ARGS.items() for i in idx]
        for name, index, kind in cases:
            real = secret if kind == "file" else outside
            targets = (real, tmp_path / "missing")
            said = [call(name, index, str(target)) for target in targets]
            case = f"{name}[{index}] ({kind}): {said[0][:300]}"
            same = [  # the path itself, gradio's file names (hashes) and timings aside
                re.sub(r"[0-9a-f]{64}|\d+\.\d+ s\b", "H", text.replace(str(target), "X"))
                for text, target in zip(said, targets, strict=True)
            ]
            assert same[0] == same[1], case
            assert any(word in said[0] for word in REFUSED), case
            assert "秘密の文書" not in said[0] and "Traceback" not in said[0], case
            climb = call(name, index, "../../" + outside.name)  # a name that climbs out
            assert any(word in climb for word in REFUSED), f"{name}[{index}]: {climb[:300]}"
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside

        # A server path posing as an upload (what any script can send) is not read.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login = urllib.parse.urlencode({"username": "u", "password": "p"}).encode()
        opener.open(urllib.request.Request(app["url"] + "login", data=login), timeout=30)
        for name, indexes in UPLOAD_ARGS.items():
            for index in indexes:
                args = [p.get("parameter_default") for p in api[name]["parameters"]]
                args[index] = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
                request = urllib.request.Request(
                    f"{app['url']}gradio_api/call{name}",
                    data=json.dumps({"data": args}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with opener.open(request, timeout=30) as resp:
                    event = json.loads(resp.read())["event_id"]
                with opener.open(f"{app['url']}gradio_api/call{name}/{event}", timeout=120) as r:
                    said = r.read().decode()
                assert "event: error" in said and "秘密の文書" not in said, (name, said[:300])
        assert not (ws / "datasets" / "secret").exists()
