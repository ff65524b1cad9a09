"""Re-label components when the user switches language.

Each tab binds its own components (`loc.bind(button, value="model.load")`); a language
change updates every bound component. No tab needs to know another tab's elements.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from studio.i18n import DEFAULT_LANGUAGE, t

Text = str | Callable[[str], object]  # a locale key, or a function of the language


class Localizer:
    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = lang  # language the components are first built in
        self._bound: list[tuple[gr.components.Component, dict[str, Text]]] = []

    def text(self, spec: Text, lang: str | None = None):
        lang = lang or self.lang
        return spec(lang) if callable(spec) else t(spec, lang)

    def bind(self, component, **attrs: Text):
        """Register `component` so that each attribute (label, value, info, placeholder,
        choices, ...) follows the language. Returns the component for inline use."""
        self._bound.append((component, attrs))
        return component

    def kw(self, **attrs: Text) -> dict:
        """Constructor keyword arguments in the initial language, for `bind` afterwards."""
        return {name: self.text(spec) for name, spec in attrs.items()}

    def make(self, factory, *args, i18n: dict[str, Text], **kwargs):
        """Build a component with localized attributes and bind it in one step."""
        return self.bind(factory(*args, **self.kw(**i18n), **kwargs), **i18n)

    @property
    def components(self) -> list:
        return [component for component, _ in self._bound]

    def updates(self, lang: str) -> list:
        return [
            gr.update(**{name: self.text(spec, lang) for name, spec in attrs.items()})
            for _, attrs in self._bound
        ]


class LanguageSwitch:
    """Everything that follows the language, redrawn by one event.

    Each tab registers what it redraws (`ctx.on_language(fn, inputs, outputs)`: tables and
    summaries rendered as text); the switch returns those results together with every bound
    component's labels. One event instead of one per tab: each event is a round trip through
    the queue, and while a run trains each of them waits for a lowered worker, so fifteen of
    them took the page 10-70 s to translate (issue 20).
    """

    def __init__(self, loc: Localizer, lang, handlers: list[tuple]) -> None:
        self.loc = loc
        self.lang = lang
        self.handlers = [(fn, list(inputs), list(outputs)) for fn, inputs, outputs in handlers]
        self.inputs: list = []  # every handler's inputs but the language, once each
        for _, inputs, _ in self.handlers:
            for component in inputs:
                if component is not lang and all(component is not c for c in self.inputs):
                    self.inputs.append(component)
        self.outputs: list = list(loc.components)
        for _, _, outputs in self.handlers:
            for component in outputs:
                if all(component is not c for c in self.outputs):
                    self.outputs.append(component)
        self._slot = {id(c): i for i, c in enumerate(self.outputs)}

    def redraw(self, lang: str, *values) -> list:
        """Updates for `self.outputs` in `lang`, given the values of `self.inputs`."""
        current = {id(c): v for c, v in zip(self.inputs, values, strict=True)}
        current[id(self.lang)] = lang
        result: list = self.loc.updates(lang) + [gr.skip()] * (
            len(self.outputs) - len(self.loc.components)
        )
        for fn, inputs, outputs in self.handlers:
            returned = fn(*(current[id(c)] for c in inputs))
            if len(outputs) == 1:
                returned = [returned]
            for component, value in zip(outputs, returned, strict=True):
                slot = self._slot[id(component)]
                result[slot] = _merged(result[slot], value)
        return result

    def initial(self, lang: str, *values) -> list:
        """The page's first language (from the browser's Accept-Language): nothing to redraw
        when it is the language the page was built in."""
        if lang == self.loc.lang:
            return [lang] + [gr.skip()] * len(self.outputs)
        return [lang, *self.redraw(lang, *values)]


def _merged(earlier, value):
    """A handler's value for a component whose labels the switch also updates."""
    if not isinstance(earlier, dict) or earlier.get("__type__") != "update":
        return value
    if isinstance(value, dict) and value.get("__type__") == "update":
        return {**earlier, **value}
    if isinstance(value, gr.components.Component):
        return value  # a whole component: its constructor set its own labels
    return {**earlier, "value": value}


def relabeled(shown, headers: list[str]):
    """A table on the page with its headers in another language: its rows stay (they are
    data, or results that cannot be recomputed here); not a table of that shape: an empty
    one with these headers (never Gradio's "1 2 3")."""
    import pandas as pd

    if isinstance(shown, pd.DataFrame) and len(shown.columns) == len(headers):
        return pd.DataFrame(shown.values.tolist(), columns=headers)
    return pd.DataFrame([], columns=headers)
