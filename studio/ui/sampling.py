"""The decoding controls every generating tab shows (Model, Compare, Chat): one row of
sliders built the same way, read back into one validated `GenerationSettings`."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from studio.generate import GenerationSettings


@dataclass
class SamplingControls:
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Number | None
    repetition: gr.Slider
    seed: gr.Number

    def inputs(self) -> list:
        """The components in the order `settings_from` takes them after max/greedy."""
        parts = [self.temperature, self.top_p, self.top_k, self.repetition, self.seed]
        return [p for p in parts if p is not None]


def sampling_controls(
    loc, defaults: GenerationSettings | None = None, *, top_k: bool = False
) -> SamplingControls:
    """Temperature, top-p, (top-k), repetition penalty and seed, in one row."""
    d = defaults or GenerationSettings()
    with gr.Row():
        temperature = loc.make(
            gr.Slider,
            i18n={"label": "model.temperature"},
            minimum=0.05,
            maximum=2.0,
            step=0.05,
            value=d.temperature,
        )
        top_p = loc.make(
            gr.Slider,
            i18n={"label": "model.top_p"},
            minimum=0.05,
            maximum=1.0,
            step=0.01,
            value=d.top_p,
        )
        k = None
        if top_k:
            k = loc.make(gr.Number, i18n={"label": "model.top_k"}, value=d.top_k, precision=0)
        repetition = loc.make(
            gr.Slider,
            i18n={"label": "model.repetition_penalty"},
            minimum=0.8,
            maximum=2.0,
            step=0.05,
            value=d.repetition_penalty,
        )
        seed = loc.make(gr.Number, i18n={"label": "model.seed"}, value=d.seed, precision=0)
    return SamplingControls(temperature, top_p, k, repetition, seed)


def settings_from(max_new_tokens, greedy, temperature, top_p, *rest) -> GenerationSettings:
    """Settings from the controls' values: `max_new_tokens, greedy`, then what
    `SamplingControls.inputs()` gives (top-k only when the controls have it). Raises
    ValueError for values out of range."""
    top_k, (repetition, seed) = (rest[0], rest[1:]) if len(rest) == 3 else (0, rest)
    return GenerationSettings(
        max_new_tokens=int(max_new_tokens or GenerationSettings.max_new_tokens),
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k or 0),
        repetition_penalty=float(repetition),
        seed=int(seed or 0),
        greedy=bool(greedy),
    ).validate()
