"""The token store: encoded once, equal to the inspector's encoding row for row, keyed so that
only what changes tokens encodes again, and safe when a process is killed, the disk fills up,
two processes want the same data or the user cancels."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from studio.data.records import dataset_file, iter_records
from studio.data.registry import find_version
from studio.labels.encode import IGNORE, EncodingSettings, encode_example, pack, resolve_tokens
from studio.labels.packing import PackIndex, Sequences, first_fit_decreasing, held_out
from studio.tokens import cache
from studio.tokens.build import Cancelled, encode_rows
from studio.train.data import DataError, open_rows, stage_rows
from tests.conftest import REPO
from tests.test_labels import build_tokenizer, training_lines, wrap

DATASETS = ("sample-corpus", "sample-chat-ojousama", "sample-qa", "teaching-chat-broken")


def sentencepiece_like():
    """A Llama-2-style tokenizer: BPE over Metaspace pieces (`▁`) with byte fallback, a BOS
    added by its post-processor and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    core.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=specials + alphabet, show_progress=False
    )
    core.train_from_iterator(training_lines(), trainer)
    return wrap(core)


@pytest.fixture(scope="module")
def tokenizers():
    from studio.models.load import load_tokenizer, resolve_source

    return {
        "tsumugi-tiny": load_tokenizer(resolve_source("")),
        "byte-bpe": build_tokenizer(),
        "sentencepiece": sentencepiece_like(),
    }


def rows_of(ws, spec):
    return [r.data for r in iter_records(dataset_file(find_version(ws, spec)))]


def reference_pack(encoded, packing: str, max_length: int) -> list[tuple[list, list, list]]:
    """(ids, labels, positions) of each sequence, packed the plain way with lists: what the
    index over the store must reproduce."""
    if packing == "off":
        return [(e.input_ids, e.labels, list(range(len(e.input_ids)))) for e in encoded]
    if packing == "isolated":  # first fit, longest first; rows in their order inside a bin
        bins, room = [], []
        for e in sorted(encoded, key=lambda e: len(e.input_ids), reverse=True):
            for b, free in enumerate(room):
                if len(e.input_ids) <= free:
                    bins[b].append(e)
                    room[b] -= len(e.input_ids)
                    break
            else:
                bins.append([e])
                room.append(max_length - len(e.input_ids))
        out = []
        for members in bins:
            ids, labels, positions = [], [], []
            for e in sorted(members, key=lambda e: e.row):
                ids += e.input_ids
                labels += [IGNORE, *e.labels[1:]] if e.input_ids else []
                positions += list(range(len(e.input_ids)))
            out.append((ids, labels, positions))
        return out
    stream_ids = [i for e in encoded for i in e.input_ids]
    stream_labels = [x for e in encoded for x in e.labels]
    return [
        (
            stream_ids[k : k + max_length],
            stream_labels[k : k + max_length],
            list(range(len(stream_ids[k : k + max_length]))),
        )
        for k in range(0, len(stream_ids), max_length)
    ]


def assert_store_is_the_encoding(store, rows, tok, settings, packings=None):
    """Every row of the store is `encode_example` of that row, and its packing index (for
    each of `packings`, by default the settings' own) gathers what packing those rows the
    plain way makes, as `pack` does."""
    encoded = [encode_example(data, tok, settings, row=i) for i, data in enumerate(rows)]
    assert store.n_rows == len(rows)
    starts, facts = store.offsets, store.facts
    for i, enc in enumerate(encoded):
        ids = store.read(int(starts[i]), int(starts[i + 1])).tolist()
        assert ids == enc.input_ids, i
        first, last = int(store.span_offsets[i]), int(store.span_offsets[i + 1])
        labels = [IGNORE] * len(ids)
        for a, b in store.spans[first:last].tolist():
            labels[a:b] = ids[a:b]
        assert labels == enc.labels, i
        fact = facts[i]
        assert int(fact["full_length"]) == enc.full_length
        assert int(fact["truncated"]) == enc.truncated
        assert int(fact["trained_dropped"]) == enc.trained_dropped
        assert bool(fact["end_dropped"]) == enc.end_dropped
    for packing in packings or [settings.packing]:
        same = settings.replace(packing=packing)
        index = PackIndex.build(store.lengths, np.arange(store.n_rows), packing, same.max_length)
        gathered = [(s.input_ids, s.labels, s.position_ids) for s in Sequences(store, index)]
        assert gathered == reference_pack(encoded, packing, same.max_length), packing
        assert [s.input_ids for s in pack(encoded, same, tok)] == [g[0] for g in gathered]


def variants():
    """Every stage and loss mode, each with rows truncated (for packing off and isolated,
    which share a store) and whole (concatenated packing)."""
    modes = [("sft", loss) for loss in ("auto", "completion", "assistant", "all")]
    for stage, loss in [*modes, ("pretrain", "auto")]:
        yield EncodingSettings(stage=stage, loss=loss, max_length=96), ("off", "isolated")
        whole = EncodingSettings(stage=stage, loss=loss, max_length=96, packing="concatenated")
        yield whole, ("concatenated",)


@pytest.mark.parametrize("spec", DATASETS)
def test_store_equals_encode_example_row_for_row(workspace, tokenizers, spec):
    """Every bundled dataset, stage, loss mode and packing mode, with three families of
    tokenizers: the store holds what `encode_example` gives row by row, and its packing
    index gathers what `pack` makes of those rows."""
    rows = rows_of(workspace, spec)
    for name, tokenizer in tokenizers.items():
        for settings, packings in variants():
            tok = resolve_tokens(tokenizer, settings)
            store = open_rows(workspace, [spec], tok, settings, workers=1)
            assert not store.meta["cached"], (name, settings)
            assert_store_is_the_encoding(store, rows, tok, settings, packings)
            store.close()


@pytest.mark.slow
def test_worker_processes_write_the_same_store(workspace, tokenizers):
    """Encoding in worker processes (spawned, chunks in flight) gives byte-identical files."""
    settings = EncodingSettings(stage="pretrain", packing="isolated")
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    here = open_rows(workspace, ["sample-corpus"], tok, settings, workers=1)
    files = {p.name: p.read_bytes() for p in here.folder.glob("*.bin")}
    findings = (here.folder / "findings.json").read_text()
    here.close()
    cache.remove_store(workspace, here.folder.name)
    apart = open_rows(workspace, ["sample-corpus"], tok, settings, workers=2)
    assert apart.meta["workers"] == 2 and not apart.meta["cached"]
    assert {p.name: p.read_bytes() for p in apart.folder.glob("*.bin")} == files
    assert (apart.folder / "findings.json").read_text() == findings


def test_the_key_changes_with_what_changes_tokens_and_nothing_else(workspace, tokenizers):
    base = EncodingSettings(max_length=128)
    tokenizer = tokenizers["byte-bpe"]

    def key(settings=base, tok=tokenizer, spec="sample-chat-ojousama"):
        tokens = resolve_tokens(tok, settings)
        versions = [find_version(workspace, spec)]
        return cache.store_key(cache.describe(versions, tokens, settings))

    first = key()
    # Settings that change a row's tokens or labels encode again ...
    changed = {
        "stage": "pretrain",
        "loss": "all",
        "max_length": 64,
        "truncation_side": "left",
        "add_eos": False,
        "add_special_tokens": "yes",
        "response_template": "回答:",
        "chat_template": build_tokenizer().chat_template.replace("{{ bos_token }}", ""),
    }
    for field, value in changed.items():
        assert key(base.replace(**{field: value})) != first, field
    assert key(base.replace(packing="concatenated")) != first  # rows are no longer truncated
    # ... while packing, padding and the collator's masking are indexes over the same store.
    for field, value in {
        "packing": "isolated",
        "pad_token": "<unk>",
        "mask_pad_token_id": True,
    }.items():
        assert key(base.replace(**{field: value})) == first, field
    concatenated = base.replace(packing="concatenated")
    assert key(concatenated.replace(max_length=512)) == key(concatenated)
    # A tokenizer with another EOS, another template or another vocabulary, and other data.
    assert key(tok=build_tokenizer(eos="<|endoftext|>")) != first
    retemplated = build_tokenizer()
    retemplated.chat_template = retemplated.chat_template + " "
    assert key(tok=retemplated) != first
    assert key(tok=tokenizers["sentencepiece"]) != first
    assert key(spec="teaching-chat-broken") != first
    assert key(tok=build_tokenizer()) == first  # the same tokenizer built again


def test_a_store_is_encoded_once_then_read(workspace, tokenizers):
    settings = EncodingSettings()
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    seen = []
    first = open_rows(workspace, ["sample-chat-ojousama"], tok, settings, progress=seen.append)
    assert not first.meta["cached"] and seen and seen[-1].rows == 330
    assert seen[-1].tokens == first.n_tokens
    seen.clear()
    again = open_rows(
        workspace,
        ["sample-chat-ojousama"],
        tok,
        settings.replace(packing="isolated"),
        progress=seen.append,
    )
    assert again.meta["cached"] and again.folder == first.folder and not seen
    listed = cache.list_stores(workspace)
    assert [s.key for s in listed] == [first.folder.name]
    assert listed[0].tokens == first.n_tokens and listed[0].bytes > 2 * first.n_tokens
    assert listed[0].sources == ["sample-chat-ojousama/v0001"]


def test_a_cached_store_still_refuses_rows_the_stage_cannot_use(workspace, tokenizers):
    """The inspector may encode chat rows for any stage; a run of the wrong stage on the same
    store is refused with the row's line, as before."""
    settings = EncodingSettings(stage="pretrain")
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    open_rows(workspace, ["sample-chat-ojousama"], tok, settings).close()  # as the inspector
    with pytest.raises(DataError, match=r"line 1: a messages row cannot be used for continued"):
        open_rows(workspace, ["sample-chat-ojousama"], tok, settings, stage="pretrain")


def test_cancel_keeps_nothing(workspace, tokenizers):
    settings = EncodingSettings(stage="pretrain")
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    seen = []
    with pytest.raises(Cancelled):
        open_rows(
            workspace,
            ["sample-corpus"],
            tok,
            settings,
            progress=seen.append,
            cancel=lambda: bool(seen),
        )
    assert not list(cache.tokens_dir(workspace).glob("*/meta.json"))
    assert not list(cache.tokens_dir(workspace).glob(".tmp-*"))


def test_a_full_disk_while_encoding_keeps_nothing_and_says_what_to_do(
    workspace, tokenizers, monkeypatch
):
    from studio.tokens import rows

    real = rows.StoreWriter.append
    calls = []

    def append(self, cols, flags):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, cols, flags)

    monkeypatch.setattr(rows.StoreWriter, "append", append)
    monkeypatch.setattr("studio.tokens.build.CHUNK_ROWS", 100)
    settings = EncodingSettings(stage="pretrain")
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    with pytest.raises(
        cache.StoreError, match="the disk filled up while encoding sample-corpus"
    ) as info:
        open_rows(workspace, ["sample-corpus"], tok, settings)
    assert info.value.reason == "disk_full" and "tokens list" in str(info.value)
    assert [p.name for p in cache.tokens_dir(workspace).iterdir() if p.is_dir()] == []
    monkeypatch.undo()
    store = open_rows(workspace, ["sample-corpus"], tok, settings)  # room again: it works
    assert store.n_rows == 2240


def test_a_damaged_store_is_encoded_again(workspace, tokenizers):
    settings = EncodingSettings()
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    store = open_rows(workspace, ["sample-chat-ojousama"], tok, settings)
    store.close()
    (store.folder / "offsets.bin").write_bytes(b"\0" * 8)  # cut short
    again = open_rows(workspace, ["sample-chat-ojousama"], tok, settings)
    assert not again.meta["cached"]
    assert_store_is_the_encoding(again, rows_of(workspace, "sample-chat-ojousama"), tok, settings)


# --- processes ----------------------------------------------------------------------------

# A process that encodes sample-corpus for the pretrain stage; with SLOW, its rows come
# slowly after the first chunks, so that it can be killed (or raced) mid-encode.
ENCODER = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {repo!r})
    from studio.workspace import open_workspace
    from studio.models.load import load_tokenizer, resolve_source
    from studio.labels.encode import EncodingSettings, resolve_tokens
    from studio.tokens.cache import open_or_build
    from studio.data.registry import find_version
    from studio.train.data import stage_rows

    def main():
        ws = open_workspace({ws!r})
        settings = EncodingSettings(stage="pretrain")
        tok = resolve_tokens(load_tokenizer(resolve_source("")), settings)
        slow = os.environ.get("SLOW") == "1"

        def rows():
            for n, row in stage_rows(ws, ["sample-corpus"], "pretrain"):
                if slow and n >= 300:
                    time.sleep(0.01)
                yield n, row

        store = open_or_build(ws, [find_version(ws, "sample-corpus")], tok, settings, rows, workers=1)
        print(json.dumps({{"key": store.folder.name, "cached": store.meta["cached"], "rows": store.n_rows}}))

    if __name__ == "__main__":
        main()
    """
)


def encoder(workspace, tmp_path, slow: bool):
    script = tmp_path / "encode.py"
    script.write_text(ENCODER.format(repo=str(REPO), ws=str(workspace.root)))
    env = {**os.environ, "SLOW": "1" if slow else "0"}
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_a_process_killed_mid_encode_leaves_nothing_a_reader_takes_for_complete(
    workspace, tmp_path
):
    root = cache.tokens_dir(workspace)
    proc = encoder(workspace, tmp_path, slow=True)

    def half_written():
        return any(p.stat().st_size > 0 for p in root.glob(".tmp-*/ids.bin"))

    assert wait_for(half_written), proc.stderr.read() if proc.poll() is not None else ""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(root.glob(".tmp-*")) and not list(root.glob("*/meta.json"))
    assert cache.list_stores(workspace) == []  # not listed; its leftover is cleared
    assert not list(root.glob(".tmp-*"))
    again = encoder(workspace, tmp_path, slow=False)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    result = json.loads(out.splitlines()[-1])
    assert result["rows"] == 2240 and result["cached"] is False
    from studio.models.load import load_tokenizer, resolve_source

    settings = EncodingSettings(stage="pretrain")
    tok = resolve_tokens(load_tokenizer(resolve_source("")), settings)
    store = open_rows(workspace, ["sample-corpus"], tok, settings)
    assert store.meta["cached"] and store.folder.name == result["key"]
    expected = encode_rows(stage_rows(workspace, ["sample-corpus"], None), tok, settings)
    assert np.array_equal(store.read(0, store.n_tokens), expected.read(0, expected.n_tokens))


@pytest.mark.slow
def test_two_processes_on_the_same_data_encode_it_once(workspace, tmp_path):
    first = encoder(workspace, tmp_path, slow=True)
    assert wait_for(lambda: list(cache.tokens_dir(workspace).glob(".tmp-*")))
    second = encoder(workspace, tmp_path, slow=False)  # waits for the first one's lock
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.splitlines()[-1]))
    assert results[0]["key"] == results[1]["key"]
    assert [r["cached"] for r in results] == [False, True]
    assert len(cache.list_stores(workspace)) == 1


# --- cache management -----------------------------------------------------------------------


def test_eviction_removes_the_least_recently_used_but_never_one_in_use(workspace, tokenizers):
    tok_settings = [
        EncodingSettings(max_length=64),
        EncodingSettings(max_length=128),
        EncodingSettings(max_length=256),
    ]
    stores = []
    for settings in tok_settings:
        tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
        store = open_rows(
            workspace, ["sample-chat-ojousama"], tok, settings, pin=settings.max_length == 64
        )
        stores.append(store)
        time.sleep(0.05)
    os.utime(stores[1].folder / "used", (time.time() + 10, time.time() + 10))  # used last
    sizes = {s.key: s.bytes for s in cache.list_stores(workspace)}
    # Room for two: the least recently used goes, unless it is in use (then the next).
    removed = cache.evict(
        workspace, cap=sizes[stores[0].folder.name] + sizes[stores[1].folder.name] + 1
    )
    assert [s.key for s in removed] == [stores[2].folder.name]
    left = {s.key for s in cache.list_stores(workspace)}
    assert left == {stores[0].folder.name, stores[1].folder.name}
    with pytest.raises(cache.StoreError, match="in use"):
        cache.remove_store(workspace, stores[0].folder.name[:8])
    stores[0].pin.release()
    assert cache.remove_store(workspace, stores[0].folder.name[:8]).key == stores[0].folder.name


def test_tokens_verb_lists_removes_and_caps(workspace, tokenizers):
    settings = EncodingSettings()
    tok = resolve_tokens(tokenizers["tsumugi-tiny"], settings)
    key = open_rows(workspace, ["sample-chat-ojousama"], tok, settings).folder.name

    def studio(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "studio", *args, "--workspace", str(workspace.root), "--json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        return proc.returncode, json.loads(proc.stdout)

    code, listed = studio("tokens", "list")
    assert code == 0 and [s["key"] for s in listed["stores"]] == [key]
    assert listed["stores"][0]["bytes"] > 0 and listed["stores"][0]["bytes_per_token"] > 2
    code, capped = studio("tokens", "cap", "0.000001")
    assert code == 0 and capped["removed"] == [key] and capped["stores"] == []
    code, failed = studio("tokens", "remove", "nope")
    assert code == 1 and "no token store" in failed["error"]["message"]


# --- the index ------------------------------------------------------------------------------


def test_first_fit_decreasing_is_first_fit_decreasing():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(0, 60, size=int(rng.integers(1, 300)))
        bins = first_fit_decreasing(lengths, 64)
        # the plain quadratic algorithm
        room, expected = [], np.zeros(len(lengths), np.int64)
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            for b, free in enumerate(room):
                if lengths[i] <= free:
                    room[b] -= lengths[i]
                    expected[i] = b
                    break
            else:
                room.append(64 - lengths[i])
                expected[i] = len(room) - 1
        assert np.array_equal(bins, expected)


def test_the_validation_split_is_the_one_runs_have_always_had():
    import random

    for n, share, seed in ((100, 0.1, 1), (330, 0.05, 42), (7, 0.2, 0)):
        order = list(range(n))
        random.Random(seed).shuffle(order)
        expected = sorted(order[: max(1, round(n * share))])
        assert held_out(n, share, seed).tolist() == expected


def test_a_resumed_run_reads_the_store_not_the_text(workspace, capsys):
    """Stop a run, take its data file away: the resume trains on from the store alone and
    reproduces the uninterrupted curve."""
    import threading

    from studio.train import presets
    from studio.train.process import execute
    from studio.train.start import prepare_run

    sets = ["max_steps=6", "save_steps=3", "logging_steps=1", "validation_split=0"]
    config, preset = presets.load("cpu-demo-sft", sets)
    straight = prepare_run(workspace, config, preset=preset)
    assert execute(straight, workspace) == 0
    expected = {m["step"]: m["loss"] for m in straight.metrics() if m["kind"] == "train"}

    run = prepare_run(workspace, config, preset=preset)

    def stop_when_running():
        while (run.status().get("step") or 0) < 1:
            time.sleep(0.05)
        run.request_stop()

    threading.Thread(target=stop_when_running, daemon=True).start()
    assert execute(run, workspace) == 0 and run.state == "stopped"
    data = dataset_file(find_version(workspace, "sample-chat-ojousama"))
    data.rename(data.with_suffix(".away"))
    assert execute(run, workspace, resume=True) == 0
    assert run.state == "completed"
    resumed = {m["step"]: m["loss"] for m in run.metrics() if m["kind"] == "train"}
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), step
    assert "(encoded before)" in capsys.readouterr().out


def test_a_real_full_disk_while_encoding(workspace, tmp_path):
    """The token cache on a 256 KiB tmpfs (in a user namespace): the encoding of the corpus
    (about 0.9 MB of store) stops with the disk_full message and leaves the disk empty."""
    import shutil

    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    tokens = cache.tokens_dir(workspace)
    tokens.mkdir(parents=True)
    probe = textwrap.dedent(
        f"""
        import json, os
        from studio.workspace import open_workspace
        from studio.models.load import load_tokenizer, resolve_source
        from studio.labels.encode import EncodingSettings, resolve_tokens
        from studio.tokens.cache import StoreError
        from studio.train.data import open_rows

        ws = open_workspace({str(workspace.root)!r})
        settings = EncodingSettings(stage="pretrain")
        tok = resolve_tokens(load_tokenizer(resolve_source("")), settings)
        try:
            open_rows(ws, ["sample-corpus"], tok, settings, workers=1)
            print(json.dumps({{"error": None}}))
        except StoreError as exc:
            left = sorted(os.listdir({str(tokens)!r}))
            print(json.dumps({{"error": str(exc), "reason": exc.reason, "left": left}}))
        """
    )
    script = tmp_path / "probe.py"
    script.write_text(probe)
    inner = f"mount -t tmpfs -o size=256k tmpfs {tokens} && exec {sys.executable} {script}"
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", inner],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    if proc.returncode != 0 and "Traceback" not in proc.stderr:  # the probe never ran
        pytest.skip(f"no user namespace with a tmpfs here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["reason"] == "disk_full", result
    assert "the disk filled up while encoding sample-corpus" in result["error"]
    assert [name for name in result["left"] if not name.endswith(".lock")] == []
