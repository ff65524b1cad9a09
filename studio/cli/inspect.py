"""`inspect`: which tokens carry loss, and the mistakes that ruin a fine-tune."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.common import CliError, model_args, open_ws, progress_printer
from studio.errors import StudioError


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    ins = verbs.add_parser(
        "inspect",
        parents=[common],
        help="which tokens carry loss, and the mistakes that ruin a fine-tune",
        description="Encode a dataset exactly as training would, check every row and print "
        "the diagnostics. Exit status 3 when an error-level problem is found.",
    )
    model_args(ins)
    ins.add_argument("--data", required=True, help="JSONL/JSON file, or dataset NAME[/vNNNN]")
    ins.add_argument("--settings", type=Path, help="settings profile YAML (fields or encoding:)")
    ins.add_argument("--stage", choices=["sft", "pretrain"])
    ins.add_argument("--loss", choices=["auto", "completion", "assistant", "all"])
    ins.add_argument("--max-length", type=int)
    ins.add_argument("--truncation-side", choices=["right", "left"])
    ins.add_argument("--packing", choices=["off", "isolated", "concatenated"])
    ins.add_argument("--chat-template", type=Path, help="file with a Jinja chat template")
    ins.add_argument("--no-add-eos", dest="add_eos", action="store_false", default=None)
    ins.add_argument("--add-special-tokens", choices=["auto", "yes", "no"])
    ins.add_argument("--pad-token")
    ins.add_argument("--response-template")
    ins.add_argument("--mask-pad-token-id", action="store_true", default=None)
    ins.add_argument("--limit", type=int, help="check only the first N rows")
    ins.add_argument("--show-row", type=int, help="also print the tokens of this row")
    ins.add_argument("--write-fixed", type=Path, help="write the fixed settings to this YAML")
    ins.add_argument(
        "--repair",
        action="store_true",
        help="write a repaired copy of the data (typed end markers removed, unanswered rows "
        "dropped) as a new dataset version; a file is first imported into the workspace",
    )
    ins.add_argument("--lang", choices=["en", "ja"], default="en", help="message language")
    ins.set_defaults(func=cmd_inspect)


def _inspect_settings(args):
    import dataclasses

    from studio.labels.encode import EncodingSettings
    from studio.labels.profiles import read_settings_file

    settings = EncodingSettings()
    if args.settings:
        settings = read_settings_file(args.settings)[0]
    # Every setting has a flag of the same name (the chat template is read from a file).
    changes = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(EncodingSettings)
        if field.name != "chat_template" and getattr(args, field.name) is not None
    }
    if args.chat_template:
        try:
            changes["chat_template"] = args.chat_template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the chat template: {exc}") from exc
    return settings.replace(**changes)


def _data_path(args) -> tuple[Path, str, bool]:
    """(data file, its name, whether it is a dataset version of the workspace)."""
    candidate = Path(args.data).expanduser()
    if candidate.is_file():
        return candidate, candidate.name, False
    return _dataset_path(args, candidate)


def _dataset_path(args, candidate: Path) -> tuple[Path, str, bool]:
    from studio.data.records import dataset_file
    from studio.data.registry import find_version

    if candidate.suffix in {".jsonl", ".json"}:
        raise CliError(f"no file at {args.data}")
    version = find_version(open_ws(args), args.data)
    return dataset_file(version), f"{version.name}/{version.version}", True


def cmd_inspect(args) -> tuple[dict, str]:
    from jinja2 import TemplateError

    from studio.labels.diagnose import explain
    from studio.labels.fixes import apply_settings
    from studio.labels.inspect import (
        examples_of,
        inspect_rows,
        is_preference,
        load_target,
        rows_at,
        scan,
        scan_dataset,
    )
    from studio.labels.inspect import suggest_fixes as suggest
    from studio.labels.profiles import dump
    from studio.labels.view import chips, trained_text
    from studio.models.load import resolve_source

    settings = _inspect_settings(args)
    path, data_name, registered = _data_path(args)
    ws = open_ws(args)
    target = load_target(
        resolve_source(args.model, named_dirs=ws.model_dirs()),
        trust_remote_code=args.trust_remote_code,
    )
    try:
        if registered and args.limit is None:  # through its token store (kept for later)
            report = scan_dataset(ws, [data_name], target, settings, progress=progress_printer())
        else:
            report = scan(examples_of(path, limit=args.limit), target, settings)
        fixes = suggest(report, target, settings, path)
        shown = rows_at(path, args.show_row, 1) if args.show_row is not None else []
    except TemplateError as exc:  # a broken --chat-template: a message, not a traceback
        raise CliError(f"the chat template cannot be rendered: {exc}") from exc
    payload = report.to_dict()
    payload["data"] = data_name
    for entry, diag in zip(payload["diagnostics"], report.diagnostics, strict=True):
        entry["message"], entry["fix"] = explain(diag, args.lang)
    payload["fixes"] = [f.to_dict() for f in fixes]
    if args.write_fixed:
        fixed = apply_settings(settings, fixes)
        actions = [f.action for f in fixes if f.kind == "settings"]
        from studio.fsutil import atomic_write_text

        atomic_write_text(args.write_fixed, dump(fixed, fixes=actions))
        payload["fixed_settings"] = str(args.write_fixed)
    lines = [
        f"{data_name}: {report.rows} rows, {payload['trained_ratio']:.1%} of "
        f"{report.tokens} tokens trained, {report.truncated_rows} truncated "
        f"({report.seconds:.2f} s, {target.name})"
    ]
    if report.spans:
        lines.append(f"assistant turns found by: {report.spans}")
    for entry in payload["diagnostics"]:
        rows = ", ".join(map(str, entry["rows"][:10]))
        lines.append(f"[{entry['severity']}] {entry['code']} ({entry['count']} rows: {rows})")
        lines.append(f"    {entry['message']}")
        lines.append(f"    fix: {entry['fix']}")
    if not payload["diagnostics"]:
        lines.append("no problems found")
    if shown and is_preference(shown[0][1]):
        lines += _pair_lines(shown, target, settings, args.show_row, payload)
    elif shown:
        inspection = inspect_rows(shown, target, settings)
        payload["row"] = [s.to_dict() for s in inspection.sequences]
        special = inspection.tokens.special_ids
        for seq in inspection.sequences:
            lines.append(f"row {args.show_row}: position  id  label  role  text")
            for chip in chips(seq, target.tokenizer, special):
                for i in range(chip.start, chip.end):
                    text = repr(chip.text) if i == chip.start else ""
                    lines.append(
                        f"  {i:>5} {seq.input_ids[i]:>6} {seq.labels[i]:>6}  {chip.role:<7} {text}"
                    )
            lines.append("  trained text: " + " | ".join(trained_text(seq, target.tokenizer)))
    if args.write_fixed:
        lines.append(f"fixed settings written to {args.write_fixed}")
    data_fixes = [f for f in fixes if f.kind == "data"]
    if args.repair and data_fixes:
        repaired = _repair(args, path, data_name, data_fixes[0])
        payload["repaired"] = repaired.to_dict()
        lines.append(
            f"repaired copy: {repaired.name}/{repaired.version} ({repaired.rows} rows); "
            f"the original is unchanged"
        )
    payload["exit_code"] = 3 if report.blocked else 0
    return payload, "\n".join(lines)


def _pair_lines(shown, target, settings, number: int, payload: dict) -> list[str]:
    """A preference row's tokens: the prompt once, then each reply, every token of which
    trains (as the Inspect tab shows it)."""
    from studio.labels.encode import resolve_tokens
    from studio.labels.pairs import encode_pairs, shown_parts
    from studio.labels.view import chips

    tok = resolve_tokens(target.tokenizer, settings)
    (pair,) = encode_pairs(shown, tok, settings)
    payload["row"] = {
        "prompt_ids": pair.prompt_ids,
        **{f"{side}_ids": ids for side, ids in pair.sides().items()},
        "reason": pair.reason,
    }
    lines = [f"row {number}: a pair" + (f" (left out: {pair.reason})" if pair.reason else "")]
    for name, part in shown_parts(pair):
        trained = "not trained" if name == "prompt" else "trained"
        lines.append(f"  {name} ({len(part.input_ids)} tokens, {trained}):")
        lines.append(
            "    " + " ".join(repr(c.text) for c in chips(part, target.tokenizer, tok.special_ids))
        )
    return lines


def _repair(args, path: Path, data_name: str, fix):
    from studio.data.records import import_file
    from studio.data.registry import find_version
    from studio.labels.fixes import repair_dataset

    ws = open_ws(args)
    try:
        if "/" in data_name and not Path(args.data).expanduser().is_file():
            version = find_version(ws, data_name)
        else:  # a loose file: import it first, so the repair has a parent version
            version = import_file(ws, path, operation="import", source=str(path))
        return repair_dataset(
            ws,
            version,
            fix.params["literals"],
            drop_unanswered=fix.params["drop_unanswered"],
            trailing=fix.params.get("trailing", []),
        )
    except StudioError as exc:
        raise CliError(f"cannot repair the data: {exc}", code=exc.code, **exc.params) from exc
