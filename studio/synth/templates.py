"""Prompt templates for generating SFT data from passages.

A template is a small YAML file (`presets/synth/*.yaml`, or one the user wrote): the system
prompt and the user prompt sent with each passage, the labels the reply must use
("質問:"/"回答:", "User:"/"Assistant:"), the reply's language (which the checks hold it to)
and what it makes: `qa` (question/answer pairs) or `chat` (a short conversation). The user
prompt's placeholders are `{passage}`, `{pairs}` (qa), `{turns}` (chat) and `{persona}`
(the template's `persona_line` with the persona in it, or nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Formatter

from studio.errors import InputError
from studio.paths import PRESETS_DIR

TEMPLATES_DIR = PRESETS_DIR / "synth"
FORMS = ("qa", "chat")
LANGUAGES = ("ja", "en")
LABELS = {"qa": ("question", "answer"), "chat": ("user", "assistant")}
PLACEHOLDERS = ("passage", "pairs", "turns", "persona")


class TemplateError(InputError):
    """A template that cannot be used; the message says which field and why."""


@dataclass
class Template:
    name: str
    language: str
    form: str
    system: str
    prompt: str
    labels: dict
    pairs: int = 3
    turns: int = 2
    response_prefix: str = ""
    persona_line: str = ""
    grounding: float = 0.3  # least share of an answer's n-grams found in the passage
    description: dict = field(default_factory=dict)

    @property
    def roles(self) -> tuple[str, str]:
        """(asking label, answering label) as they appear in the reply."""
        ask, answer = LABELS[self.form]
        return self.labels[ask], self.labels[answer]

    def messages(self, passage: str, persona: str = "") -> list[dict]:
        """The conversation sent to the generator for one passage."""
        persona_text = self.persona_line.format(persona=persona.strip()) if persona.strip() else ""
        user = self.prompt.format(
            passage=passage, pairs=self.pairs, turns=self.turns, persona=persona_text
        )
        turns = [{"role": "system", "content": self.system}] if self.system.strip() else []
        return turns + [{"role": "user", "content": user.strip()}]

    def instructions(self, persona: str = "") -> str:
        """Everything the generator is told except the passage: what a reply must not copy."""
        return "\n".join(m["content"] for m in self.messages("\n", persona))

    def to_dict(self) -> dict:
        return asdict(self)


def _fields(text: str, where: str) -> list[str]:
    """The placeholders of a format string (only plain names are filled: an attribute or
    index, `{passage.x}`, `{passage[0]}`, is refused as unknown)."""
    try:
        return [f for _, f, _, _ in Formatter().parse(text) if f is not None]
    except ValueError as exc:  # a lone { or }
        raise TemplateError(
            f"{where}: {exc}; write a literal brace as {{{{ or }}}}",
            code="template_braces",
            where=where,
        ) from None


def template_from_dict(data: dict, where: str | None = None) -> Template:
    """A checked template from its fields (a parsed YAML file, or a job's saved copy)."""
    if not isinstance(data, dict):
        raise TemplateError(
            f"{where}: a template is a YAML mapping", code="template_not_mapping", where=where
        )
    where = where or str(data.get("name") or "template")

    def need(key: str, kind=str):
        value = data.get(key)
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            raise TemplateError(
                f"{where}: `{key}` is missing or not a {kind.__name__}",
                code="bad_template_field",
                where=where,
                field=key,
            )
        return value

    form, language = need("form"), need("language")
    if form not in FORMS:
        raise TemplateError(
            f"{where}: form must be one of {', '.join(FORMS)}, not {form!r}",
            code="template_choice",
            where=where,
            field="form",
            choices=", ".join(FORMS),
        )
    if language not in LANGUAGES:
        raise TemplateError(
            f"{where}: language must be one of {', '.join(LANGUAGES)}",
            code="template_choice",
            where=where,
            field="language",
            choices=", ".join(LANGUAGES),
        )
    prompt = need("prompt")
    if "{passage}" not in prompt:
        raise TemplateError(
            f"{where}: the prompt has no {{passage}}, so the model would never see the text",
            code="template_no_passage",
            where=where,
        )
    labels = need("labels", dict)
    for key in LABELS[form]:
        if not str(labels.get(key) or "").strip():
            raise TemplateError(
                f"{where}: labels.{key} is missing",
                code="bad_template_field",
                where=where,
                field=f"labels.{key}",
            )
    template = Template(
        name=str(data.get("name") or Path(where).stem),
        language=language,
        form=form,
        system=str(data.get("system") or ""),
        prompt=prompt,
        labels={k: str(labels[k]).strip() for k in LABELS[form]},
        pairs=int(data.get("pairs", 3)),
        turns=int(data.get("turns", 2)),
        response_prefix=str(data.get("response_prefix") or ""),
        persona_line=str(data.get("persona_line") or ""),
        grounding=float(data.get("grounding", 0.3)),
        description=dict(data.get("description") or {}),
    )
    if not 1 <= template.pairs <= 20 or not 1 <= template.turns <= 10:
        raise TemplateError(
            f"{where}: pairs must be 1-20 and turns 1-10", code="template_counts", where=where
        )
    if not 0 <= template.grounding <= 1:
        raise TemplateError(
            f"{where}: grounding is a share between 0 and 1",
            code="template_grounding",
            where=where,
        )
    for text, allowed in ((prompt, PLACEHOLDERS), (template.persona_line, ("persona",))):
        unknown = [f for f in _fields(text, where) if f not in allowed]
        if unknown:
            raise TemplateError(
                f"{where}: the prompt uses {{{unknown[0]}}}, which the studio does not fill; "
                f"use {', '.join('{' + p + '}' for p in allowed)} and write other braces "
                "as {{ }}",
                code="template_placeholder",
                where=where,
                field=unknown[0],
            )
    return template


def parse_template(text: str, where: str = "template") -> Template:
    """A template from YAML text (what the Data tab's editor holds)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(
            f"{where}: not valid YAML ({exc})", code="template_yaml", where=where, error=str(exc)
        ) from None
    return template_from_dict(data, where)


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def template_text(name: str) -> str:
    """The YAML of a bundled template, to show and edit."""
    if name not in template_names():
        raise TemplateError(
            f"no template named {name!r}; the bundled ones are {', '.join(template_names())}",
            code="no_such_template",
            name=name,
            choices=", ".join(template_names()),
        )
    return (TEMPLATES_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def load_template(name_or_path: str) -> Template:
    """A bundled template by name, or a YAML file by path (the CLI's --template)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return parse_template(path.read_text(encoding="utf-8"), str(path))
    return parse_template(template_text(name_or_path), name_or_path)
