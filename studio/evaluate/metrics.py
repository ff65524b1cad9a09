"""Scores and their uncertainty.

Every score is the mean of a per-item value (1/0 for a hit, a reciprocal rank, a character
F1), so its standard error is the sample standard deviation over sqrt(n). Two models scored
on the same items are compared by the per-item differences (a paired test): with 50 items a
10-point gap in accuracy is often inside two standard errors, i.e. indistinguishable from
noise, and the studio says so instead of ranking the models.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

NOISE_Z = 1.96  # a difference inside 1.96 standard errors is not told apart from noise
_SPACE = re.compile(r"\s+")
LOWER_IS_BETTER = {"perplexity", "bits_per_char", "nll_per_token"}


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII, half-width kana to full-width, ...),
    then whitespace runs collapsed to one space and stripped at both ends."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised accepted answer."""
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers))


def char_f1(prediction: str, answers: Sequence[str]) -> float:
    """Best character-level F1 against the accepted answers (bags of characters after
    normalisation, spaces ignored), as JSQuAD scores Japanese answers."""
    pred = Counter(normalize(prediction).replace(" ", ""))
    best = 0.0
    for answer in answers:
        gold = Counter(normalize(answer).replace(" ", ""))
        overlap = sum((pred & gold).values())
        if not overlap:
            continue
        precision = overlap / sum(pred.values())
        recall = overlap / sum(gold.values())
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def rank_of(scores: Sequence[float], correct: int) -> int:
    """1-based rank of candidate `correct` when higher scores rank first. Ties count
    against the correct candidate (a model that scores everything alike earns nothing)."""
    target = scores[correct]
    return 1 + sum(1 for i, s in enumerate(scores) if i != correct and s >= target)


def reciprocal_rank(scores: Sequence[float], correct: int) -> float:
    return 1.0 / rank_of(scores, correct)


def mean_se(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, standard error of the mean, n) over the values that are not None."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(kept)
    if not n:
        return None, None, 0
    mean = sum(kept) / n
    if n < 2:
        return mean, None, n
    var = sum((v - mean) ** 2 for v in kept) / (n - 1)
    return mean, math.sqrt(var / n), n


def summary(values: Sequence[float | None]) -> dict:
    mean, se, n = mean_se(values)
    return {"value": mean, "stderr": se, "n": n}


def ratio_summary(numerators: Sequence[float], denominators: Sequence[float]) -> dict:
    """Mean of a ratio of sums (negative log-likelihood per token over documents) and its
    standard error by the delta method for a ratio estimator."""
    n = len(numerators)
    total = sum(denominators)
    if not n or not total:
        return {"value": None, "stderr": None, "n": n}
    ratio = sum(numerators) / total
    if n < 2:
        return {"value": ratio, "stderr": None, "n": n}
    mean_den = total / n
    resid = sum((x - ratio * d) ** 2 for x, d in zip(numerators, denominators, strict=True))
    se = math.sqrt(resid / (n * (n - 1))) / mean_den
    return {"value": ratio, "stderr": se, "n": n}


def paired_difference(a: dict[str, float | None], b: dict[str, float | None]) -> dict:
    """Compare two models' per-item values (item id -> value) on the items both have:
    the mean difference a - b, its paired standard error and whether it is within noise."""
    common = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    diffs = [float(a[k]) - float(b[k]) for k in common]
    mean, se, n = mean_se(diffs)
    within = mean is None or se is None or abs(mean) <= NOISE_Z * se
    if mean is not None and se == 0.0:
        within = mean == 0.0
    return {"difference": mean, "stderr": se, "n": n, "within_noise": within}
