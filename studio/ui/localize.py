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
