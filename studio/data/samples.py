"""The bundled sample data, registered into a new workspace as its first datasets."""

from __future__ import annotations

from studio.data.registry import add_version
from studio.fsutil import atomic_copy
from studio.paths import SAMPLE_DATA_DIR

TEACHING_PROFILE = "seed-004-broken"

# (store, dataset name, format, {file in version: file in assets/data})
SAMPLES = [
    ("datasets", "sample-corpus", "text", {"data.jsonl": "corpus.jsonl"}),
    ("datasets", "sample-chat-ojousama", "messages", {"data.jsonl": "chat_ojousama.jsonl"}),
    ("datasets", "sample-qa", "prompt_completion", {"data.jsonl": "qa_pc.jsonl"}),
    # Preference pairs for the CPU demo's DPO run (presets/cpu-demo-dpo.yaml).
    ("datasets", "sample-pref-ojousama", "preference", {"data.jsonl": "pref_ojousama.jsonl"}),
    # The label inspector's teaching example (see assets/build_teaching_example.py).
    (
        "datasets",
        "teaching-chat-broken",
        "messages",
        {"data.jsonl": "teaching/chat_ojousama_broken.jsonl"},
    ),
    (
        "evals/suites",
        "sample-eval-qa",
        "short_answer_qa",
        {"items.jsonl": "eval_qa.jsonl", "shots.jsonl": "eval_qa_shots.jsonl"},
    ),
    ("evals/suites", "sample-eval-rank", "candidate_ranking", {"items.jsonl": "eval_rank.jsonl"}),
]


def register_samples(ws) -> tuple[list, list[str]]:
    """Register every bundled sample; returns (registered versions, missing asset files)."""
    registered, missing = [], []
    for store, name, fmt, files in SAMPLES:
        sources = {dest: SAMPLE_DATA_DIR / src for dest, src in files.items()}
        absent = [str(p) for p in sources.values() if not p.is_file()]
        if absent:
            missing += absent
            continue
        registered.append(
            add_version(
                ws.root / store,
                name,
                sources,
                format=fmt,
                operation="bundled-sample",
                source=f"assets/data/{next(iter(files.values()))}",
            )
        )
    teaching = SAMPLE_DATA_DIR / "teaching" / "chat_ojousama_broken.settings.yaml"
    profile = ws.root / "profiles" / f"{TEACHING_PROFILE}.yaml"
    if teaching.is_file() and not profile.exists():
        profile.parent.mkdir(parents=True, exist_ok=True)
        atomic_copy(teaching, profile)
    return registered, missing
