"""The arrows of docs/architecture.md, checked: every import in `studio/`, at module level or
inside a function (a lazy import is still an arrow), read with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

STUDIO = Path(__file__).resolve().parent.parent / "studio"
FRONT_ENDS = ("studio.ui", "studio.cli", "studio.__main__")
# The guide shows the other tabs' own renderings of its steps (the check, the grid, the
# chat's warnings, the scores, the export): the one tab allowed to import tabs, as
# docs/architecture.md says.
TABS_THAT_COMPOSE = {"studio.ui.guide_tab"}


def module_name(path: Path) -> str:
    parts = path.relative_to(STUDIO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it; `from a import b` counts as a.b too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(STUDIO.rglob("*.py"))}


def within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_reader_sees_every_kind_of_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import a.b\nfrom c import d\n\ndef f():\n    from studio.ui import x\n")
    assert imports_of(sample) == {"a.b", "c", "c.d", "studio.ui", "studio.ui.x"}


def test_the_library_imports_neither_front_end_nor_gradio():
    broken = {
        module: sorted(i for i in imported if within(i, (*FRONT_ENDS, "gradio", "gradio_client")))
        for module, imported in graph().items()
        if not within(module, FRONT_ENDS)
    }
    assert not {m: i for m, i in broken.items() if i}, "library -> front end or gradio"


def test_the_front_ends_do_not_import_each_other():
    modules = graph()
    cli_to_ui = {m: sorted(i for i in imp if within(i, ("studio.ui", "gradio")))
                 for m, imp in modules.items() if within(m, ("studio.cli", "studio.__main__"))}  # fmt: skip
    ui_to_cli = {m: sorted(i for i in imp if within(i, ("studio.cli",)))
                 for m, imp in modules.items() if within(m, ("studio.ui",))}  # fmt: skip
    assert not {m: i for m, i in cli_to_ui.items() if i}, "cli -> ui"
    assert not {m: i for m, i in ui_to_cli.items() if i}, "ui -> cli"


def test_tabs_do_not_import_each_other():
    modules = graph()
    tabs = {m for m in modules if m.startswith("studio.ui.") and m.endswith("_tab")}
    assert len(tabs) >= 10
    crossing = {
        tab: sorted(i for i in modules[tab] if i in tabs and i != tab)
        for tab in tabs - TABS_THAT_COMPOSE
    }
    assert not {t: i for t, i in crossing.items() if i}, (
        "a tab imports another tab: move what they share into the library or a ui helper"
    )


def test_runs_does_not_import_train():
    """runs/ owns the run directory and the child process; train/ owns configs, data,
    preflight and the training process, and may use runs/, never the other way round."""
    crossing = {
        module: sorted(i for i in imported if within(i, ("studio.train",)))
        for module, imported in graph().items()
        if within(module, ("studio.runs",))
    }
    assert not {m: i for m, i in crossing.items() if i}, "runs -> train"


# Broad exception types a front end may catch only in the places named here, each for a
# reason: the two last resorts, and plain Python parsing whose failure is not the library's.
BROAD = {"Exception", "BaseException", "ValueError", "LookupError", "RuntimeError", "KeyError",
         "TypeError", "IndexError", "AttributeError"}  # fmt: skip
BROAD_ALLOWED = {
    ("studio.cli", "run"),  # the CLI's last resort: a traceback in a log, an apology
    ("studio.ui.errors", "steps"),  # the UI's last resort (generators) ...
    ("studio.ui.errors", "call"),  # ... and plain handlers
    ("studio.ui.errors", "_language"),  # binding a handler's arguments to find `lang`
    ("studio.ui.app", "calm_idle_queue"),  # an environment variable that is not a number
    ("studio.ui.progress", "_run"),  # a background thread hands what it raised to the handler
    ("studio.ui.export_tab", "parse_weights"),  # float() of a typed weight -> RecipeError
}


def broad_catches(path: Path) -> list[tuple[str, str, int]]:
    """(function, caught name, line) of every handler in `path` that catches a broad type,
    or everything (a bare `except:`)."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
            if isinstance(child, ast.ExceptHandler):
                kinds = child.type.elts if isinstance(child.type, ast.Tuple) else [child.type]
                for kind in kinds:
                    caught = (
                        "bare" if kind is None else getattr(kind, "id", getattr(kind, "attr", ""))
                    )
                    if caught == "bare" or caught in BROAD:
                        found.append((function, caught, child.lineno))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def test_the_reader_finds_broad_catches(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text(
        "def f():\n    try:\n        pass\n    except (OSError, ValueError):\n        pass\n"
        "    try:\n        pass\n    except:\n        pass\n"
        "def g():\n    try:\n        pass\n    except StudioError:\n        pass\n"
    )
    assert broad_catches(sample) == [("f", "ValueError", 4), ("f", "bare", 8)]


def test_the_front_ends_catch_studio_errors_and_nothing_broader():
    """What a user can cause is a `StudioError`; the front ends catch that (and OSError), and
    anything else reaches their last resort, which logs it and apologises."""
    broken = [
        f"{module}.{function}:{line} catches {caught}"
        for path in sorted(STUDIO.rglob("*.py"))
        if within(module := module_name(path), FRONT_ENDS)
        for function, caught, line in broad_catches(path)
        if (module, function) not in BROAD_ALLOWED
    ]
    assert not broken, broken
