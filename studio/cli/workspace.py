"""`init`, `env` and `datasets list`: the workspace and the machine."""

from __future__ import annotations

import argparse

from studio.cli.common import open_ws


def add_parser(verbs, common: argparse.ArgumentParser) -> None:
    verbs.add_parser(
        "init", parents=[common], help="create or open the workspace and register samples"
    ).set_defaults(func=cmd_init)
    verbs.add_parser(
        "env", parents=[common], help="device, precision, backend and library versions"
    ).set_defaults(func=cmd_env)

    datasets = verbs.add_parser("datasets", parents=[common], help="datasets in the workspace")
    ds_verbs = datasets.add_subparsers(dest="action", metavar="ACTION", required=True)
    ds_verbs.add_parser(
        "list", parents=[common], help="list dataset versions and evaluation suites"
    ).set_defaults(func=cmd_datasets_list)


def cmd_init(args) -> tuple[dict, str]:
    ws = open_ws(args)
    summary = ws.summary()
    lines = [f"Workspace ready at {ws.root}"]
    lines += [
        f"  {d['name']} {d['version']} ({d['format']}, {d['rows']} rows)"
        for d in summary["datasets"]
    ]
    return summary, "\n".join(lines)


def cmd_env(args) -> tuple[dict, str]:
    from studio.hardware import device_report, library_versions

    report = {"device": device_report(), "versions": library_versions()}
    d = report["device"]
    lines = [
        f"device: {d['device']} ({d['dtype']}), backend: {d['backend']}",
        f"unsloth: {d['unsloth']['reason']}",
    ]
    lines += [f"{k}: {v or 'not installed'}" for k, v in report["versions"].items()]
    return report, "\n".join(lines)


def cmd_datasets_list(args) -> tuple[dict, str]:
    from studio.data.registry import list_datasets, list_eval_suites

    ws = open_ws(args)
    datasets = [d.to_dict() for d in list_datasets(ws)]
    suites = [d.to_dict() for d in list_eval_suites(ws)]
    rows = [
        f"{d['name']:<28} {d['version']}  {d['format']:<18} {d['rows']:>7} rows  {d['operation']}"
        for d in datasets + suites
    ]
    return {"datasets": datasets, "eval_suites": suites}, "\n".join(rows) or "no datasets"
