"""Evaluation: domain suites (short-answer QA, candidate ranking, multiple choice, perplexity)
run on any set of models and checkpoints, with standard errors, per-item outcomes stored in
the workspace (`evals/results/`), and an optional bridge to lm-evaluation-harness.

- `suites`: suite files, their schema check and their versions in `evals/suites/`;
- `metrics`: normalisation, exact match, character F1, reciprocal rank, standard errors;
- `scoring`: batched log-probabilities of continuations, and batched greedy answers;
- `tasks`: one suite on one loaded model -> per-item outcomes and scores;
- `runner`: suites x models (or every checkpoint of a run), results saved as they finish;
- `results`: stored sessions, tables, the per-item matrix, score against step, CSV;
- `harness`: lm-evaluation-harness tasks on a loaded model, when `lm_eval` is installed.
"""

from __future__ import annotations

from studio.errors import StudioError


class EvalError(StudioError, RuntimeError):
    """An evaluation cannot run as asked; the message says what to change."""
