"""Hostile and broken inputs (issue 10): every case is built here, in a temporary folder,
and fed through the real entry points: the library, the CLI (`python -m studio ...`: in
process for every case, as a real subprocess for a representative few) and, for a subset,
the running app through gradio_client, uploads included.

For every case the user must get a clear message (the file, line or field, and what to do),
never a Python traceback; nothing outside the workspace may change (a sentinel folder beside
the workspace and the folder holding the inputs are compared before and after: listing,
mtimes, sizes and contents), so the originals are never modified either.

`CASES` is the corpus as a table: id, how the input is built, the entry point, and a
fragment of the message the user must see.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.cli import main as cli_main
from studio.ui.data_tab import MAP_FIELDS
from tests.conftest import REPO, child_env

TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "site-packages/")
ONE_GB = 1 << 30
EMBEDDED = REPO / "assets" / "models" / "tsumugi-tiny"
CHAT_ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


@dataclass(frozen=True)
class Case:
    id: str
    built: str  # how the input is built (for the report)
    entry: str  # which entry point family runs it (see RUNNERS)
    expect: str  # a fragment of the message the user must see
    arg: str = ""  # the input: a file under the corpus, a name, a model folder, ...
    extra: tuple = ()  # further CLI arguments


CASES = [
    # --- data import: empty files of each format ---
    *[
        Case(f"empty-{ext}", f"0-byte .{ext}", "import",
             f"empty.{ext} is empty: there is nothing to import. Check", f"empty.{ext}")
        for ext in ("jsonl", "json", "csv", "tsv", "parquet", "txt")
    ],
    Case("binary", "10 KB of every byte value, named .jsonl", "import",
         "looks like a binary file", "binary.jsonl"),
    Case("truncated-parquet", "first half of a valid Parquet file", "import",
         "is not a readable Parquet file", "truncated.parquet"),
    Case("ragged-csv", "CSV rows with 1 and 3 fields under a 2-column header", "import",
         "ragged.csv, line 3: 1 fields where the header has 2", "ragged.csv"),
    Case("invalid-json-line", "JSONL whose line 2 is not JSON", "import",
         "badjson.jsonl, line 2: not valid JSON", "badjson.jsonl"),
    Case("json-list-line", "JSONL whose line 2 is a JSON list", "import",
         "listline.jsonl, line 2: a JSON list, not an object", "listline.jsonl"),
    Case("json-not-a-list", ".json holding the number 42", "import",
         "number.json must hold a JSON list of objects", "number.json"),
    Case("utf16-no-bom", "JSONL encoded UTF-16-LE without BOM", "import",
         "looks like UTF-16 text", "utf16.jsonl"),
    Case("latin1", "Latin-1 text with accents", "import",
         "latin1.txt is not UTF-8, CP932 (Shift_JIS) or EUC-JP text. Save it as UTF-8",
         "latin1.txt"),
    Case("undetectable", "random high bytes (no encoding fits)", "import",
         "undetectable.txt is not UTF-8, CP932", "undetectable.txt"),
    Case("mixed-encoding", "1.2 MB of UTF-8 lines, then a CP932 line", "import",
         "The file mixes encodings; convert it to UTF-8", "mixed.txt"),
    Case("one-gb-line", "a JSONL file that is one 1 GiB line", "import",
         "line 1 is longer than 16 M characters", "huge.jsonl"),
    Case("one-gb-line-inspector", "the same 1 GiB line, read by the label inspector",
         "inspect_data", "huge.jsonl, line 1 is longer than 16 M characters", "huge.jsonl"),
    # --- names and paths ---
    Case("name-dotdot", "dataset name ../sentinel/pwned", "import_name",
         "is not a valid name", "../sentinel/pwned"),
    Case("name-absolute", "dataset name = absolute path into the sentinel", "import_name",
         "is not a valid name", "{root}/sentinel/pwned"),
    Case("symlink-out", "workspace/datasets/linked -> sentinel/target (outside)", "import_name",
         "outside", "linked"),
    Case("symlink-out-suite", "workspace/evals/suites/suitelink -> sentinel/target", "suite",
         "outside", "suitelink.jsonl"),
    # --- configs with unknown keys or wrong types ---
    Case("train-unknown-key", "training config with lernin_rate:", "train",
         "unknown field(s): lernin_rate", "unknown.yaml"),
    Case("train-unknown-nested", "training config with training.lr:", "train",
         "unknown field(s) in training: lr", "unknown_nested.yaml"),
    Case("train-wrong-type", "training.learning_rate: fast", "train",
         "training.learning_rate: expected a number, got 'fast'", "wrongtype.yaml"),
    Case("train-negative", "training.learning_rate: -1", "train",
         "training.learning_rate must be greater than 0", "negative.yaml"),
    Case("train-huge-int", "per_device_train_batch_size: 1e23 as an integer", "train",
         "training.per_device_train_batch_size is too large", "hugeint.yaml"),
    Case("train-nan", "training.learning_rate: .nan", "train",
         "training.learning_rate must be a finite number", "nan.yaml"),
    Case("train-huge-max-length", "encoding.max_length: 99999999999999", "train",
         "max_length must be at most", "hugelen.yaml"),
    Case("clean-unknown-key", "cleaning step with colour: blue", "clean",
         "step 1 (doc_length): unknown parameter 'colour'", "clean_unknown.yaml"),
    Case("clean-wrong-type", "min_chars: lots", "clean",
         "step 1 (doc_length): min_chars must be an integer", "clean_wrongtype.yaml"),
    Case("clean-negative", "min_chars: -5", "clean",
         "min_chars must be at least 0, got -5", "clean_negative.yaml"),
    Case("clean-top-key", "a pipeline with stepz: instead of steps:", "clean",
         "unknown top-level key 'stepz'", "clean_topkey.yaml"),
    Case("all-filtered", "min_chars: 1000 over rows of a few characters", "clean",
         "removed every row of tiny/v0001, so it left no rows", "clean_all.yaml"),
    Case("suite-wrong-type", "multiple-choice row with choices: 5", "suite",
         "suite_wrongtype.jsonl:1: 'choices' must be a list", "suite_wrongtype.jsonl"),
    Case("suite-unknown-keys", "a suite row with only foo:", "suite",
         "suite_unknown.jsonl:1: cannot tell the suite kind", "suite_unknown.jsonl"),
    Case("suite-list-line", "a suite line that is a JSON list", "suite",
         "suite_listline.jsonl:1: expected a JSON object", "suite_listline.jsonl"),
    # --- settings: huge and negative numbers ---
    Case("gen-negative-tokens", "--max-new-tokens -5", "generate_settings",
         "max_new_tokens must be between 1 and 8192", "", ("--max-new-tokens", "-5")),
    Case("gen-huge-tokens", "--max-new-tokens 99999999999", "generate_settings",
         "max_new_tokens must be between 1 and 8192", "", ("--max-new-tokens", "99999999999")),
    Case("gen-infinite-temperature", "--temperature 1e400", "generate_settings",
         "temperature must be in (0, 5]", "", ("--temperature", "1e400")),
    Case("inspect-huge-max-length", "--max-length 99999999999999", "inspect_settings",
         "max_length must be at most", "", ("--max-length", "99999999999999")),
    Case("inspect-negative-max-length", "--max-length -3", "inspect_settings",
         "max_length must be an integer of at least 8", "", ("--max-length", "-3")),
    # --- model folders ---
    Case("pickle-model", "model folder with a booby-trapped pytorch_model.bin only", "model",
         "only has pickle weights", "m_pickle"),
    Case("config-not-json", "model folder whose config.json is not JSON", "model",
         "config.json is not a valid JSON file (line 1", "m_badcfg"),
    Case("pickle-adapter", "adapter folder with a booby-trapped adapter_model.bin only",
         "adapter", "has no adapter_model.safetensors", "a_pickle"),
    # --- chat templates that raise ---
    Case("template-raise-inspector", "chat_template.jinja calls raise_exception", "inspector",
         "it raised an error: no chats today", "m_raise"),
    Case("template-syntax-inspector", "chat_template.jinja with a syntax error", "inspector",
         "a syntax error on line 1", "m_syntax"),
    Case("template-raise-train-check", "model with a raising template, training check",
         "train", "it raised an error: no chats today", "tpl_raise.yaml"),
    Case("template-syntax-train-check", "encoding.chat_template with a syntax error", "train",
         "a syntax error on line 1", "tpl_syntax.yaml"),
    Case("template-raise-chat", "model with a raising template, chat", "chat",
         "it raised an error: no chats today", "m_raise"),
    Case("template-syntax-chat", "model with a broken template, chat", "chat",
         "a syntax error on line 1", "m_syntax"),
]  # fmt: skip


# --- building the corpus ----------------------------------------------------------------


class _Booby:
    """Unpickling this creates `path`: proof that a pickle was loaded without restriction."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _yaml(path: Path, text: str) -> None:
    path.write_text(text.strip() + "\n", encoding="utf-8")


def _write_one_gb_line(path: Path) -> float:
    started = time.perf_counter()
    chunk = b"a" * (16 << 20)
    with open(path, "wb") as fh:
        fh.write(b'{"text": "')
        for _ in range(ONE_GB // len(chunk)):
            fh.write(chunk)
        fh.write(b'"}\n')
    return time.perf_counter() - started


def _model_copy(dest: Path) -> Path:
    shutil.copytree(EMBEDDED, dest)
    return dest


def build_corpus(root: Path, ws) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    corpus, sentinel = root / "corpus", root / "sentinel"
    corpus.mkdir()
    (sentinel / "target").mkdir(parents=True)
    (sentinel / "secret.txt").write_text("do not touch\n", encoding="utf-8")
    (sentinel / "target" / "keep.txt").write_text("keep\n", encoding="utf-8")
    pwned = sentinel / "PWNED"  # created by a booby-trapped pickle if one is ever unpickled

    for ext in ("jsonl", "json", "csv", "tsv", "parquet", "txt"):
        (corpus / f"empty.{ext}").write_bytes(b"")
    (corpus / "binary.jsonl").write_bytes(bytes(range(256)) * 40)
    pq.write_table(pa.table({"text": ["あいうえお" * 20] * 3000}), corpus / "full.parquet")
    whole = (corpus / "full.parquet").read_bytes()
    (corpus / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (corpus / "ragged.csv").write_text("text,label\nhello,1\nworld\nx,y,z\n", encoding="utf-8")
    (corpus / "badjson.jsonl").write_text('{"text": "ok"}\n{"text": broken\n', encoding="utf-8")
    (corpus / "listline.jsonl").write_text('{"text": "ok"}\n["a", "b"]\n', encoding="utf-8")
    (corpus / "number.json").write_text("42", encoding="utf-8")
    (corpus / "utf16.jsonl").write_bytes('{"text": "こんにちは"}\n'.encode("utf-16-le") * 20)
    (corpus / "latin1.txt").write_bytes("café au lait, naïve résumé\n".encode("latin-1") * 20)
    (corpus / "undetectable.txt").write_bytes(bytes([0x80, 0xFF, 0xA0, 0x81, 0xFE]) * 400)
    with open(corpus / "mixed.txt", "wb") as fh:
        for _ in range(400):
            fh.write(("あ" * 1000 + "\n").encode("utf-8"))
        fh.write("シフトJISの行\n".encode("cp932"))
    seconds = _write_one_gb_line(corpus / "huge.jsonl")
    (corpus / "short.jsonl").write_text('{"text": "short"}\n{"text": "tiny"}\n', encoding="utf-8")
    (corpus / "chat.jsonl").write_text(json.dumps(CHAT_ROW) + "\n", encoding="utf-8")

    configs = {
        "unknown.yaml": "model: tsumugi-tiny\ndataset: tiny\nlernin_rate: 0.1",
        "unknown_nested.yaml": "model: tsumugi-tiny\ndataset: tiny\ntraining:\n  lr: 0.1",
        "wrongtype.yaml": "model: tsumugi-tiny\ndataset: tiny\ntraining:\n  learning_rate: fast",
        "negative.yaml": "model: tsumugi-tiny\ndataset: tiny\ntraining:\n  learning_rate: -1",
        "hugeint.yaml": "model: tsumugi-tiny\ndataset: tiny\ntraining:\n"
        "  per_device_train_batch_size: 100000000000000000000000",
        "nan.yaml": "model: tsumugi-tiny\ndataset: tiny\ntraining:\n  learning_rate: .nan",
        "hugelen.yaml": "model: tsumugi-tiny\ndataset: tiny\nencoding:\n"
        "  max_length: 99999999999999",
        "tpl_raise.yaml": f"model: {corpus / 'm_raise'}\ndataset: chat\ntraining:\n  max_steps: 1",
        "tpl_syntax.yaml": "model: tsumugi-tiny\ndataset: chat\nencoding:\n"
        "  chat_template: '{% for m in messages %}'\ntraining:\n  max_steps: 1",
        "clean_unknown.yaml": "steps:\n  - filter: doc_length\n    min_chars: 1\n    colour: blue",
        "clean_wrongtype.yaml": "steps:\n  - filter: doc_length\n    min_chars: lots",
        "clean_negative.yaml": "steps:\n  - filter: doc_length\n    min_chars: -5",
        "clean_topkey.yaml": "stepz: []",
        "clean_all.yaml": "steps:\n  - filter: doc_length\n    min_chars: 1000",
        "clean_one.yaml": "steps:\n  - filter: doc_length\n    min_chars: 1",
    }
    for name, text in configs.items():
        _yaml(corpus / name, text)
    suites = {
        "suite_wrongtype.jsonl": '{"question": "q", "choices": 5, "answer": 0}',
        "suite_unknown.jsonl": '{"foo": 1}',
        "suite_listline.jsonl": "[1, 2]",
        "suitelink.jsonl": '{"text": "a perfectly good perplexity row"}',
    }
    for name, text in suites.items():
        (corpus / name).write_text(text + "\n", encoding="utf-8")

    m_pickle = _model_copy(corpus / "m_pickle")
    (m_pickle / "model.safetensors").unlink()
    torch.save({"weights": _Booby(pwned)}, m_pickle / "pytorch_model.bin")
    m_badcfg = _model_copy(corpus / "m_badcfg")
    (m_badcfg / "config.json").write_text('{"model_type": "llama", broken', encoding="utf-8")
    m_raise = _model_copy(corpus / "m_raise")
    (m_raise / "chat_template.jinja").write_text(
        "{{ raise_exception('no chats today') }}", encoding="utf-8"
    )
    m_syntax = _model_copy(corpus / "m_syntax")
    (m_syntax / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m.content }", encoding="utf-8"
    )
    adapter = corpus / "a_pickle"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": "tsumugi-tiny",
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["q_proj"],
            }
        ),
        encoding="utf-8",
    )
    torch.save({"weights": _Booby(pwned)}, adapter / "adapter_model.bin")

    # The workspace's own links out of it, and the datasets the cases work on.
    (ws.datasets / "linked").symlink_to(sentinel / "target", target_is_directory=True)
    (ws.evals / "suites").mkdir(parents=True, exist_ok=True)
    (ws.evals / "suites" / "suitelink").symlink_to(sentinel / "target")
    from studio.data.ingest import import_path

    import_path(ws, corpus / "short.jsonl", name="tiny")
    import_path(ws, corpus / "chat.jsonl", name="chat")
    ten = corpus / "ten.jsonl"
    ten.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(10)))
    import_path(ws, ten, name="ten")
    return {"corpus": corpus, "sentinel": sentinel, "pwned": pwned, "gb_write_s": seconds}


# --- what must not change ---------------------------------------------------------------


def snapshot(root: Path, skip: Path) -> dict:
    """Every entry under `root` except `skip` (the workspace): type, size, mtime and, for
    files up to 64 MiB, a hash of the contents. Links are recorded, not followed."""
    found = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        if here == skip:
            dirs[:] = []
            continue
        for name in sorted(dirs + files):
            path = here / name
            if path == skip:
                continue
            st = path.lstat()
            digest = None
            if stat.S_ISREG(st.st_mode) and st.st_size <= 64 << 20:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            found[str(path.relative_to(root))] = (
                stat.S_IFMT(st.st_mode),
                st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0,
                digest,
            )
        # a folder's own mtime changes when an entry is added: covered by the listing
    return found


def assert_clear(message: str, expect: str) -> None:
    assert expect in message, f"expected {expect!r} in the message, got {message!r}"
    for marker in TRACEBACK_MARKERS:
        assert marker not in message, f"traceback text shown to the user: {message!r}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from studio.workspace import open_workspace

    root = tmp_path_factory.mktemp("hostile")
    ws = open_workspace(root / "ws")
    built = build_corpus(root, ws)
    yield {"root": root, "ws": ws, **built}
    (built["corpus"] / "huge.jsonl").unlink()  # pytest keeps recent temp folders: not 1 GiB


@pytest.fixture
def untouched(world):
    """Asserts after the test that nothing outside the workspace changed."""
    before = snapshot(world["root"], world["ws"].root)
    yield
    after = snapshot(world["root"], world["ws"].root)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"changed outside the workspace: {sorted(changed)}"
    assert not world["pwned"].exists()


# --- the entry points ---------------------------------------------------------------------


def _arg(case: Case, world) -> str:
    return case.arg.replace("{root}", str(world["root"]))


def _file(case: Case, world) -> Path:
    return world["corpus"] / case.arg


def lib_import(case, world):
    from studio.data.ingest import import_path

    import_path(world["ws"], _file(case, world))


def lib_import_name(case, world):
    from studio.data.ingest import import_path

    import_path(world["ws"], world["corpus"] / "short.jsonl", name=_arg(case, world))


def lib_train(case, world):
    from studio.train.config import RunConfig, read_config_file
    from studio.train.start import preflight

    config = RunConfig.from_dict(read_config_file(_file(case, world)))
    preflight(world["ws"], config)


def lib_clean(case, world):
    from studio.data.clean import run_pipeline

    run_pipeline(world["ws"], "tiny", _file(case, world))


def lib_suite(case, world):
    from studio.evaluate.suites import import_suite

    import_suite(world["ws"], _file(case, world))


def lib_generate_settings(case, world):
    from studio.cli import build_parser
    from studio.generate import GenerationSettings

    args = build_parser().parse_args(["generate", "--prompt", "hi", *case.extra])
    GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature).validate()


def lib_inspect_settings(case, world):
    from studio.labels.encode import EncodingSettings

    EncodingSettings.from_dict({"max_length": case.extra[1]})


def lib_inspect_data(case, world):
    from studio.data.records import iter_records

    for _ in iter_records(_file(case, world)):
        pass


def lib_model(case, world):
    from studio.models.load import load_model, resolve_source

    load_model(resolve_source(str(_file(case, world))))


def lib_adapter(case, world):
    from studio.models.pool import ModelPool, pool_opener

    with pool_opener(world["ws"], ModelPool())(str(_file(case, world)), base="tsumugi-tiny"):
        pass


def lib_inspector(case, world):
    from studio.labels.encode import EncodingSettings
    from studio.labels.inspect import examples_of, load_target, scan
    from studio.models.load import resolve_source

    target = load_target(resolve_source(str(_file(case, world))))
    scan(examples_of(world["corpus"] / "chat.jsonl"), target, EncodingSettings())


def lib_chat(case, world):
    from studio.generate import GenerationSettings, generate
    from studio.models.pool import ModelPool, pool_opener

    with pool_opener(world["ws"], ModelPool())(str(_file(case, world))) as loaded:
        generate(loaded, "hi", GenerationSettings(max_new_tokens=2, greedy=True), chat=True)


def cli_args(case: Case, world) -> list[str]:
    c, f = world["corpus"], str(_file(case, world))
    return {
        "import": ["data", "import", f],
        "import_name": ["data", "import", str(c / "short.jsonl"), "--name", _arg(case, world)],
        "train": ["train", f, "--check"],
        "clean": ["data", "clean", "tiny", "--pipeline", f],
        "suite": ["eval", f, "--models", "tsumugi-tiny"],
        "generate_settings": ["generate", "--prompt", "hi", *case.extra],
        "inspect_settings": ["inspect", "--data", str(c / "chat.jsonl"), *case.extra],
        "inspect_data": ["inspect", "--data", f],
        "model": ["model", "info", "--model", f],
        "adapter": ["generate", "--model", "tsumugi-tiny", "--adapter", f, "--prompt", "hi"],
        "inspector": ["inspect", "--model", f, "--data", str(c / "chat.jsonl")],
        "chat": ["generate", "--chat", "--model", f, "--prompt", "hi", "--max-new-tokens", "2"],
    }[case.entry]


RUNNERS = {
    "import": lib_import,
    "import_name": lib_import_name,
    "train": lib_train,
    "clean": lib_clean,
    "suite": lib_suite,
    "generate_settings": lib_generate_settings,
    "inspect_settings": lib_inspect_settings,
    "inspect_data": lib_inspect_data,
    "model": lib_model,
    "adapter": lib_adapter,
    "inspector": lib_inspector,
    "chat": lib_chat,
}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert {c.entry for c in CASES} == set(RUNNERS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_library_and_cli_refuse_clearly(case, world, untouched, capsys):
    # The library: an exception whose message says what is wrong (a ValueError or the
    # studio's own error kinds; never a KeyError, TypeError or a Jinja/pickle error).
    from studio.models.load import ModelLoadError

    with pytest.raises((ValueError, ModelLoadError, RuntimeError)) as raised:
        RUNNERS[case.entry](case, world)
    assert_clear(str(raised.value), case.expect)
    assert not isinstance(raised.value, UnicodeError | json.JSONDecodeError), raised.value
    capsys.readouterr()

    # The CLI, in process (`python -m studio` is exactly `sys.exit(main())`).
    status = cli_main([*cli_args(case, world), "--workspace", str(world["ws"].root), "--json"])
    out, err = capsys.readouterr()
    assert status == 1, (status, out, err)
    answer = json.loads(out)
    assert answer["ok"] is False
    assert_clear(answer["error"]["message"], case.expect)
    assert not any(m in err for m in TRACEBACK_MARKERS), err  # nor on stderr


def test_rows_outside_the_cap_still_import(world, untouched):
    """The line cap refuses a runaway line, not long documents: a 200 k-character row
    (a long article) still imports."""
    from studio.data.ingest import import_path
    from studio.data.store import open_version

    path = world["root"] / "ws" / "long-row.jsonl"  # inside the workspace
    path.write_text(json.dumps({"text": "長" * 200_000}) + "\n", encoding="utf-8")
    version, report = import_path(world["ws"], path)
    assert report["rows"] == 1
    assert len(open_version(world["ws"], version)[0]["text"]) == 200_000


def test_huge_worker_count_does_not_fork_without_bound(world, untouched):
    from studio.data.clean import max_num_proc, run_pipeline

    pipeline = world["corpus"] / "clean_one.yaml"
    result = run_pipeline(world["ws"], "ten", pipeline, num_proc=100_000, dry_run=True)
    assert 1 <= result.report["num_proc"] <= max_num_proc() < 100_000


def test_pickle_weights_load_only_with_the_opt_in(world, untouched):
    """The opt-in exists and is explicit: with allow_pickle the loader hands the file to
    transformers (which itself refuses this booby-trapped pickle: weights_only)."""
    from studio.models.load import load_model, resolve_source

    source = resolve_source(str(world["corpus"] / "m_pickle"))
    with pytest.raises(Exception) as raised:  # noqa: B017,PT011 (transformers' own error)
        load_model(source, allow_pickle=True)
    assert "weights_only" in str(raised.value) or "Unpickl" in type(raised.value).__name__
    assert not world["pwned"].exists()


# --- the real `python -m studio`, as a subprocess -----------------------------------------


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _start_cli(argv: list[str], ws: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", *argv, "--workspace", str(ws)],
        cwd=REPO,
        env=child_env(PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, started: float, peak_kib: int = 0) -> dict:
    out, err = proc.communicate(timeout=120)
    return {
        "status": proc.returncode,
        "out": out,
        "err": err,
        "seconds": time.perf_counter() - started,
        "peak_mib": peak_kib / 1024,
    }


SUBPROCESS_CASES = [
    "binary",
    "name-dotdot",
    "train-unknown-key",
    "pickle-model",
    "template-raise-chat",
]


@pytest.mark.slow
def test_real_cli_subprocesses(world, untouched):
    by_id = {c.id: c for c in CASES}
    started = time.perf_counter()
    procs = {i: _start_cli(cli_args(by_id[i], world), world["ws"].root) for i in SUBPROCESS_CASES}
    for case_id, proc in procs.items():
        done = _finish(proc, started)
        assert done["status"] == 1, done
        assert done["err"].startswith("error: ") or "\nerror: " in done["err"], done["err"]
        assert_clear(done["err"], by_id[case_id].expect)


@pytest.mark.slow
def test_one_gb_line_is_refused_without_reading_it(world, untouched, record_property):
    """The importer stops at the line cap: time and peak memory stay small."""
    case = next(c for c in CASES if c.id == "one-gb-line")
    assert (world["corpus"] / "huge.jsonl").stat().st_size > ONE_GB
    started = time.perf_counter()
    proc = _start_cli(cli_args(case, world), world["ws"].root)
    peak = 0
    while proc.poll() is None:  # VmHWM: the process's peak resident memory so far
        peak = max(peak, _vm_hwm_kib(proc.pid))
        time.sleep(0.02)
    done = _finish(proc, started, peak)
    assert done["status"] == 1
    assert_clear(done["err"], case.expect)
    figures = {
        "one_gb_write_s": round(world["gb_write_s"], 2),
        "one_gb_refuse_s": round(done["seconds"], 2),
        "one_gb_peak_rss_mib": round(done["peak_mib"]),
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\n1 GiB line: {figures}")
    assert done["peak_mib"] < 900, done  # reading the line whole would take over 2 GiB


# --- the running app -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(running_app):
    from gradio_client import Client

    return Client(running_app["url"], analytics_enabled=False, verbose=False)


def _app_error(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        call()
    return str(raised.value)


def _log_tracebacks(running_app) -> int:
    """Exceptions the server log shows other than `gr.Error` (the messages the handlers
    raise on purpose, which gradio logs with their stack): each is an unexpected failure."""
    log = running_app["log"].read_text(errors="replace")
    unexpected = 0
    for block in log.split("Traceback (most recent call last):")[1:]:
        final = next((line for line in block.splitlines()[1:] if line[:1] not in " \t"), "")
        unexpected += not final.startswith("gradio.exceptions.Error")
    return unexpected


NO_MAP = [None] * len(MAP_FIELDS)  # the import's column-mapping dropdowns


@pytest.mark.client
@pytest.mark.slow
def test_app_uploads_and_settings(client, running_app, world, untouched):
    from gradio_client import handle_file

    c = world["corpus"]
    tracebacks = _log_tracebacks(running_app)

    def check(name):
        return lambda: client.predict(handle_file(str(c / name)), "", "en", api_name="/data_check")

    def imp(path, name=None):
        upload = handle_file(str(path)) if path else None
        return lambda: client.predict(
            upload, "", None, name, None, False, *NO_MAP, "en", api_name="/data_import"
        )

    seen = {
        "binary": _app_error(check("binary.jsonl")),
        "utf16-no-bom": _app_error(check("utf16.jsonl")),
        "truncated-parquet": _app_error(check("truncated.parquet")),
        "empty-csv": _app_error(imp(c / "empty.csv")),
        "ragged-csv": _app_error(imp(c / "ragged.csv")),
        "name-dotdot": _app_error(imp(c / "short.jsonl", "../sentinel/pwned")),
        "name-absolute": _app_error(imp(c / "short.jsonl", f"{world['root']}/sentinel/pwned")),
        "pickle-model": _app_error(
            lambda: client.predict(
                model=str(c / "m_pickle"), trust_remote_code=False, lang="en",
                api_name="/load_model",
            )
        ),
        "config-not-json": _app_error(
            lambda: client.predict(
                model=str(c / "m_badcfg"), trust_remote_code=False, lang="en",
                api_name="/load_model",
            )
        ),
        "suite-wrong-type": _app_error(
            lambda: client.predict(
                handle_file(str(c / "suite_wrongtype.jsonl")), "", [], "en",
                api_name="/evaluate_upload",
            )
        ),
    }  # fmt: skip
    by_id = {case.id: case for case in CASES}
    for case_id, message in seen.items():
        assert_clear(message, by_id[case_id].expect)

    # On loopback a typed path may name any file of the user's own machine, `..` and all:
    # it is only read (the fixture checks that nothing beside the workspace changed).
    typed = f"{c}/../corpus/ragged.csv"
    found, *_ = client.predict(None, typed, "en", api_name="/data_check")
    assert "ragged.csv" in found and "3 fields where the header has 2" in found

    # A broken template in chat: the reply area says why, the app answers on.
    hist_a, _, warn_a, *_ = client.predict(
        str(c / "m_raise"), None, "hi", [], [], "", 4, True, 0.7, 0.9, 0, 1.0, 0, "en",
        api_name="/chat",
    )  # fmt: skip
    assert hist_a == []
    assert_clear(warn_a, by_id["template-raise-chat"].expect)
    # ... and in the model tab: loaded, with the template's problem among the checks.
    status, *_rest, notes = client.predict(
        model=str(c / "m_syntax"), trust_remote_code=False, lang="ja", api_name="/load_model"
    )
    assert "m_syntax" in status
    assert_clear(notes, "チャットテンプレートを描画できない")
    assert_clear(notes, by_id["template-syntax-chat"].expect)
    assert _log_tracebacks(running_app) == tracebacks  # no unexpected exception on the server


@pytest.mark.client
@pytest.mark.slow
def test_app_training_check_refuses_bad_numbers(client, running_app):
    """Negative and huge numbers typed into the Train tab: a message naming the field."""
    params = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    fields = params["/train_check"]["parameters"]
    defaults = [p["parameter_default"] for p in fields]
    index = {p["label"]: i for i, p in enumerate(fields)}
    tracebacks = _log_tracebacks(running_app)
    for label, value, expect in (
        ("Learning rate", -1.0, "training.learning_rate must be greater than 0"),
        ("Batch size", 10**23, "training.per_device_train_batch_size is too large"),
        ("Weight decay", -0.5, "training.weight_decay must not be negative"),
        ("GPU memory (GiB, for the estimate)", -24.0, "gpu_memory_gib must be greater than 0"),
    ):
        args = list(defaults)
        args[index[label]] = value
        args[-1] = "en"
        message = client.predict(*args, api_name="/train_check")[0]
        assert_clear(message, expect)
    assert _log_tracebacks(running_app) == tracebacks


@pytest.mark.client
@pytest.mark.slow
def test_app_upload_names_cannot_escape(running_app, world, untouched):
    """A multipart upload whose file name climbs out (`../../x.jsonl`, an absolute path)
    lands in the app's upload cache under a plain name; importing it names the dataset
    safely and writes nothing beside the workspace."""
    import urllib.request
    import uuid

    url = running_app["url"]
    for evil in ("../../../sentinel/up.jsonl", f"{world['root']}/sentinel/abs.jsonl"):
        boundary = uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{evil}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            '{"text": "uploaded"}\n'
            f"\r\n--{boundary}--\r\n"
        ).encode()
        request = urllib.request.Request(
            url + "gradio_api/upload",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            stored = json.loads(resp.read())[0]
        assert ".." not in Path(stored).parts
        assert not Path(stored).resolve().is_relative_to(world["root"])
        payload = {"path": stored, "meta": {"_type": "gradio.FileData"}}
        answer = _raw_call(
            url, "data_import", [payload, "", None, None, None, False, *NO_MAP, "en"]
        )
        assert "Traceback" not in answer
        assert "**up/v0001**" in answer or "**abs/v0001**" in answer, answer


def _raw_call(url: str, api: str, data: list) -> str:
    """One call of a named endpoint over plain HTTP (what any browser script can send)."""
    import urllib.request

    request = urllib.request.Request(
        f"{url}gradio_api/call/{api}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        event = json.loads(resp.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event}", timeout=60) as resp:
        return resp.read().decode()


# --- YAML that expands without bound ----------------------------------------------------

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]"
            for p, x in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_yaml_alias_bombs_are_refused_before_they_expand(tmp_path):
    """~400 bytes that expand to 9^9 strings: refused, quickly, wherever the studio reads a
    user's YAML (clean pipelines and the Clean tab's settings cells, run configs, merge
    recipes, settings profiles), instead of filling memory when a message prints them."""
    from studio.data.clean import PipelineError, parse_pipeline, pipeline_from_rows
    from studio.export.recipe import MergeRecipe, RecipeError
    from studio.labels.profiles import ProfileError, read_settings_file
    from studio.safety import YamlRefused, load_yaml
    from studio.train.config import ConfigError, read_config_file

    assert len(BOMB) < 500
    with pytest.raises(YamlRefused, match="aliases"):
        load_yaml(BOMB)
    assert load_yaml("a: &x [1, 2]\nb: *x") == {"a": [1, 2], "b": [1, 2]}  # aliases still work
    with pytest.raises(YamlRefused, match="nested too deeply"):
        load_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(PipelineError, match="aliases"):
        parse_pipeline(BOMB)
    cell = "words: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"k{i}: &k{i} [{', '.join(['*a' if i == 0 else f'*k{i - 1}'] * 10)}]\n" for i in range(7)
    )
    with pytest.raises(PipelineError):
        pipeline_from_rows([[True, "ng_words", "{" + cell.replace("\n", ", ") + "}"]])
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")
    for read, error in (
        (read_config_file, ConfigError),
        (MergeRecipe.read, RecipeError),
        (read_settings_file, ProfileError),
    ):
        with pytest.raises(error, match="aliases"):
            read(path)


def test_word_lists_must_be_small_regular_files(tmp_path):
    """A FIFO would block the endpoint for everyone; /dev/zero would fill memory."""
    import os

    from studio.data.clean import PipelineError, validate_step

    fifo = tmp_path / "words.fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(PipelineError, match="not a regular file"):
            validate_step({"filter": "ng_words", "words_file": str(path)}, 0)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x\n" * (9 << 20))
    with pytest.raises(PipelineError, match="over 16 MiB"):
        validate_step({"filter": "ng_words", "words_file": str(big)}, 0)
    fine = tmp_path / "fine.txt"
    fine.write_text("禁止語\n", encoding="utf-8")
    step = validate_step({"filter": "ng_words", "words_file": str(fine)}, 0)
    assert step.params["words_file"] == str(fine)


def test_more_bad_inputs_get_short_clear_messages(workspace, tmp_path):
    """A 10^5-column CSV names a few columns and the count (not a 789 KB toast); a merge
    recipe whose base is a list is refused by name; a template macro that calls itself is
    a ChatTemplateError, not a RecursionError."""
    from studio.data.ingest import IngestError, import_path
    from studio.export.recipe import MergeRecipe, RecipeError
    from studio.models.info import ChatTemplateError, apply_chat_template
    from studio.models.load import load_tokenizer, resolve_source

    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + "x," * 99_999 + "x\n")
    with pytest.raises(IngestError) as refused:
        import_path(workspace, wide)
    assert "(100,000 columns)" in str(refused.value) and len(str(refused.value)) < 400
    with pytest.raises(RecipeError, match="base must be a name, not list"):
        MergeRecipe.from_dict({"base": ["a", "b"], "sources": [{"source": "x"}]})
    tokenizer = load_tokenizer(resolve_source(""))
    loop = "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}"
    with pytest.raises(ChatTemplateError, match="recurses"):
        apply_chat_template(tokenizer, [{"role": "user", "content": "a"}], chat_template=loop)


def test_parquet_bombs_are_capped_like_text_lines(workspace, tmp_path):
    """One 20 M-character value in a tiny Parquet file is a malformed row (skippable, like
    an over-long line); a dictionary-encoded file that decodes to far more than it weighs
    is refused before it fills memory or the cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.data import ingest
    from studio.data.ingest import IngestError, import_path

    big = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": ["ok", "x" * (20 << 20), "fine"]}), big, compression="zstd")
    assert big.stat().st_size < 100_000
    with pytest.raises(IngestError, match="2: a row of over 16 M characters"):
        import_path(workspace, big)
    version, report = import_path(workspace, big, skip_bad=True)
    assert version.rows == 2 and report["skipped"] == 1
    bomb = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["y" * (1 << 20)] * 400}), bomb, use_dictionary=True)
    assert bomb.stat().st_size < 100_000
    old = ingest.BOMB_FLOOR
    ingest.BOMB_FLOOR = 64 << 20  # the same rule, at a size a test can afford
    try:
        with pytest.raises(IngestError, match="decodes to over"):
            import_path(workspace, bomb)
    finally:
        ingest.BOMB_FLOOR = old


def test_a_lone_quote_in_a_tsv_loses_no_rows(workspace, tmp_path):
    """20 rows, CRLF, row 5 starts with a lone `"`: it swallowed rows 5-20 into one field
    (16 rows gone, "1 skipped"); now every row is its own line's."""
    from studio.data.ingest import import_path
    from studio.data.store import open_version

    quote = '"'
    lines = ["id\ttext"] + [f"{i}\t{quote if i == 5 else ''}行{i}の本文です" for i in range(1, 21)]
    path = tmp_path / "quote.tsv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    version, report = import_path(workspace, path, layout="text", mapping={"text": "text"})
    assert version.rows == 20 and report["skipped"] == 0
    texts = [r["text"] for r in open_version(workspace, version).to_list()]
    assert texts[4].endswith("行5の本文です") and texts[19] == "行20の本文です"


LOOPING_TEMPLATE = (
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
)


def test_a_template_that_loops_for_ever_is_refused_not_run(monkeypatch):
    """With the guard the app turns on, a template is first rendered in a child process with
    a time limit; one that does not finish is refused, and this process never runs it."""
    import time

    from studio.labels.encode import EncodingSettings, encode_example, resolve_tokens
    from studio.models import template_guard
    from studio.models.info import ChatTemplateError, apply_chat_template
    from studio.models.load import load_tokenizer, resolve_source

    monkeypatch.setattr(template_guard, "PROBE_SECONDS", 3.0)
    monkeypatch.setattr(template_guard, "_VERDICTS", {})
    monkeypatch.setattr(template_guard, "_ON", True)
    tokenizer = load_tokenizer(resolve_source(""))
    started = time.monotonic()
    with pytest.raises(ChatTemplateError, match="did not finish rendering"):
        apply_chat_template(
            tokenizer, [{"role": "user", "content": "a"}], chat_template=LOOPING_TEMPLATE
        )
    settings = EncodingSettings(chat_template=LOOPING_TEMPLATE)
    tok = resolve_tokens(tokenizer, settings)  # remembered, not tried again
    assert tok.spans.method == "none"
    row = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    with pytest.raises(ChatTemplateError, match="did not finish"):
        encode_example(row, tok, settings)
    assert time.monotonic() - started < 60  # (a ceiling for a busy machine, not a timing)
    # The model's own template passes the same check and renders as before.
    assert apply_chat_template(tokenizer, [{"role": "user", "content": "a"}], tokenize=False)
    huge = "{% for i in range(100000) %}" + "y" * 100 + "{% endfor %}"
    with pytest.raises(ChatTemplateError, match="over 1 M characters"):
        apply_chat_template(tokenizer, [{"role": "user", "content": "a"}], chat_template=huge)


def test_a_config_far_larger_than_its_weights_and_a_forged_header_are_named(tmp_path):
    import json
    import shutil

    from studio.models.load import ModelLoadError, load_model, resolve_source
    from studio.paths import EMBEDDED_MODEL_DIR

    huge = tmp_path / "huge"
    shutil.copytree(EMBEDDED_MODEL_DIR, huge)
    config = json.loads((huge / "config.json").read_text())
    config["hidden_size"] = 10**12
    (huge / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="config.json describes about"):
        load_model(resolve_source(str(huge)), device="cpu")
    forged = tmp_path / "forged"
    shutil.copytree(EMBEDDED_MODEL_DIR, forged)
    weights = next(forged.glob("*.safetensors"))
    header = b'{"a": {"dtype": "F32", "shape": [1000000000], "data_offsets": [0, 4000000000]}}'
    weights.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    with pytest.raises(ModelLoadError, match=weights.name):
        load_model(resolve_source(str(forged)), device="cpu")
