"""One suite on one loaded model: per-item outcomes and the scores with standard errors.

Each function returns `(items, metrics)`: `items` holds one dict per suite item with its
`id`, the outcome (`score`: the per-item value of the suite's primary metric, which the
correctness matrix shows) and what explains it (the prediction, the rank of the answer);
`metrics` maps a metric name to `{"value", "stderr", "n"}`.
"""

from __future__ import annotations

import math
import re

from studio.evaluate import metrics as m
from studio.evaluate.scoring import continuation_scores, greedy_answers, text_nll
from studio.evaluate.suites import (
    CANDIDATE_RANKING,
    MULTIPLE_CHOICE,
    PERPLEXITY,
    SHORT_ANSWER_QA,
    SLOT,
    Suite,
)

# The primary metric of each kind (the one the matrix and the step plot show first),
# and whether higher is better.
PRIMARY = {
    SHORT_ANSWER_QA: ("exact_match", True),
    CANDIDATE_RANKING: ("mrr_full", True),
    MULTIPLE_CHOICE: ("acc", True),
    PERPLEXITY: ("perplexity", False),
}
# Every metric each kind reports (`metrics` of its function), for checking a name before
# anything is scored.
METRIC_NAMES = {
    SHORT_ANSWER_QA: ("exact_match", "char_f1"),
    CANDIDATE_RANKING: tuple(
        f"{kind}_{variant}"
        for kind in ("mrr", "acc1")
        for variant in ("full", "full_norm", "after", "after_norm")
    ),
    MULTIPLE_CHOICE: ("acc", "acc_norm"),
    PERPLEXITY: ("perplexity", "bits_per_char", "nll_per_token"),
}
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
LABELS = {"ja": ("質問: ", "回答: "), "en": ("Question: ", "Answer: ")}


def labels_for(text: str) -> tuple[str, str]:
    """The QA labels of the bundled training data (`質問: …\\n回答: `), or English ones for a
    question without Japanese characters."""
    return LABELS["ja" if _JAPANESE.search(text) else "en"]


def qa_prompt(question: str, shots: list[dict]) -> str:
    q_label, a_label = labels_for(question)
    parts = [f"{q_label}{s['question']}\n{a_label}{s['answers'][0]}" for s in shots]
    parts.append(f"{q_label}{question}\n{a_label}")
    return "\n\n".join(parts)


def shots_of(suite: Suite, k: int | None = None) -> list[dict]:
    """The suite's fixed shots, the first `k` of them (default: the suite's `k`, else all)."""
    k = suite.settings.get("k") if k is None else k
    return suite.shots if k is None else suite.shots[: max(0, int(k))]


def short_answer_qa(loaded, suite: Suite, *, k: int | None = None, max_new_tokens: int = 32):
    shots = shots_of(suite, k)
    prompts = [qa_prompt(item["question"], shots) for item in suite.items]
    answers = greedy_answers(loaded, prompts, max_new_tokens=max_new_tokens)
    items = []
    for item, prediction in zip(suite.items, answers, strict=True):
        em = m.exact_match(prediction, item["answers"])
        items.append(
            {
                "id": item["id"],
                "score": em,
                "prediction": prediction,
                "exact_match": em,
                "char_f1": m.char_f1(prediction, item["answers"]),
            }
        )
    return items, {
        "exact_match": m.summary([i["exact_match"] for i in items]),
        "char_f1": m.summary([i["char_f1"] for i in items]),
    }


def candidate_ranking(loaded, suite: Suite):
    """Rank the candidates by (a) the log-probability of the whole filled-in sentence and
    (b) that of the part after the slot given the filled-in prefix, each raw and per
    character; MRR and accuracy@1 of the answer for all four."""
    requests_full, requests_after, where = [], [], []
    for n, item in enumerate(suite.items):
        before, after = item["template"].split(SLOT)
        for c, candidate in enumerate(item["candidates"]):
            requests_full.append(("", before + candidate + after))
            if after:
                requests_after.append((before + candidate, after))
            where.append((n, c, bool(after)))
    full = continuation_scores(loaded, requests_full)
    rest = iter(continuation_scores(loaded, requests_after, straddle="exclude"))
    per_item: list[dict[str, list]] = [
        {"full": [], "full_norm": [], "after": [], "after_norm": []} for _ in suite.items
    ]
    for (n, _, has_after), score in zip(where, full, strict=True):
        scores = per_item[n]
        scores["full"].append(score.logprob)
        scores["full_norm"].append(score.per_char())
        after = next(rest) if has_after else None
        scores["after"].append(after.logprob if after and after.tokens else None)
        scores["after_norm"].append(after.per_char() if after and after.tokens else None)
    items = []
    for item, scores in zip(suite.items, per_item, strict=True):
        correct = item["candidates"].index(item["answer"])
        out = {"id": item["id"], "answer": item["answer"]}
        for variant, values in scores.items():
            if any(v is None for v in values):  # nothing after the slot to score
                out[f"rr_{variant}"] = out[f"hit_{variant}"] = None
                continue
            rr = m.reciprocal_rank(values, correct)
            out[f"rr_{variant}"], out[f"hit_{variant}"] = rr, float(rr == 1.0)
            if variant == "full":
                out["top"] = item["candidates"][max(range(len(values)), key=values.__getitem__)]
        out["score"] = out["rr_full"]
        out["logprobs"] = {k: [_round(v) for v in vs] for k, vs in scores.items()}
        items.append(out)
    found = {}
    for variant in ("full", "full_norm", "after", "after_norm"):
        found[f"mrr_{variant}"] = m.summary([i[f"rr_{variant}"] for i in items])
        found[f"acc1_{variant}"] = m.summary([i[f"hit_{variant}"] for i in items])
    return items, found


def multiple_choice(loaded, suite: Suite):
    """Pick the choice with the highest log-likelihood as the answer's continuation (acc),
    and the highest per character (acc_norm)."""
    requests, owner = [], []
    for n, item in enumerate(suite.items):
        q_label, a_label = labels_for(item["question"])
        context = f"{item['context']}\n" if item.get("context") else ""
        prompt = f"{context}{q_label}{item['question']}\n{a_label}"
        for choice in item["choices"]:
            requests.append((prompt, choice))
            owner.append(n)
    scores = continuation_scores(loaded, requests)
    grouped: list[list] = [[] for _ in suite.items]
    for n, score in zip(owner, scores, strict=True):
        grouped[n].append(score)
    items = []
    for item, found in zip(suite.items, grouped, strict=True):
        raw = [s.logprob for s in found]
        norm = [s.per_char() if s.chars else -math.inf for s in found]
        pick = max(range(len(raw)), key=raw.__getitem__)
        pick_norm = max(range(len(norm)), key=norm.__getitem__)
        acc = float(pick == item["answer"])
        items.append(
            {
                "id": item["id"],
                "score": acc,
                "answer": item["answer"],
                "pick": pick,
                "pick_norm": pick_norm,
                "acc": acc,
                "acc_norm": float(pick_norm == item["answer"]),
                "logprobs": [_round(v) for v in raw],
            }
        )
    return items, {
        "acc": m.summary([i["acc"] for i in items]),
        "acc_norm": m.summary([i["acc_norm"] for i in items]),
    }


def perplexity(loaded, suite: Suite):
    """Token perplexity over all texts, and bits per character (comparable across
    tokenizers); per text, its own perplexity."""
    texts = [item["text"] for item in suite.items]
    found = text_nll(loaded, texts)
    items = []
    for item, text, (nll, tokens) in zip(suite.items, texts, found, strict=True):
        items.append(
            {
                "id": item["id"],
                "score": math.exp(nll / tokens) if tokens else None,
                "nll": nll,
                "tokens": tokens,
                "chars": len(text),
            }
        )
    nll_tok = m.ratio_summary([i["nll"] for i in items], [i["tokens"] for i in items])
    bits = m.ratio_summary([i["nll"] / math.log(2) for i in items], [i["chars"] for i in items])
    value = nll_tok["value"]
    ppl = {
        "value": math.exp(value) if value is not None else None,
        # delta method: d exp(x) = exp(x) dx
        "stderr": math.exp(value) * nll_tok["stderr"] if nll_tok["stderr"] is not None else None,
        "n": nll_tok["n"],
    }
    return items, {"perplexity": ppl, "bits_per_char": bits, "nll_per_token": nll_tok}


RUNNERS = {
    SHORT_ANSWER_QA: short_answer_qa,
    CANDIDATE_RANKING: candidate_ranking,
    MULTIPLE_CHOICE: multiple_choice,
    PERPLEXITY: perplexity,
}


def run_suite(loaded, suite: Suite, **options):
    """(items, metrics) of `suite` on `loaded`; options reach the kind's function."""
    runner = RUNNERS[suite.kind]
    accepted = {"k", "max_new_tokens"} if suite.kind == SHORT_ANSWER_QA else set()
    return runner(loaded, suite, **{k: v for k, v in options.items() if k in accepted})


def _round(value):
    return None if value is None else round(float(value), 5)
