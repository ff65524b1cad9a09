"""Launch Tsumugi Studio: `python app.py [--host] [--port] [--workspace] [--share]
[--auth user:pass] [--no-browser]`.

Listens on 127.0.0.1 unless told otherwise, and refuses to be reachable from other machines
without a password unless the user explicitly accepts that risk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

# Offline first: no telemetry or update checks from the libraries we import.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

AUTH_ENV = "STUDIO_AUTH"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="app.py", description="Tsumugi Studio web UI")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--workspace", help="workspace folder (default $STUDIO_WORKSPACE or ./workspace)"
    )
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    p.add_argument(
        "--auth",
        metavar="USER:PASS",
        help=f"require this login (or set ${AUTH_ENV}=user:pass to keep it off the command line)",
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept serving to other machines without a password (not recommended)",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return p.parse_args(argv)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth must look like user:password")
    return user, password


def is_exposed(host: str, share: bool) -> bool:
    """Reachable from other machines: a public share link or a non-loopback address."""
    from studio.safety import is_loopback_host

    return share or not is_loopback_host(host)


def check_exposure(host: str, share: bool, auth, insecure: bool) -> list[str]:
    """Reasons to refuse starting; empty when the setup is safe or explicitly accepted."""
    if is_exposed(host, share) and auth is None and not insecure:
        where = "a public share link" if share else f"{host} (reachable from other machines)"
        return [
            f"Refusing to serve on {where} without a password.",
            "Add --auth user:password (or set STUDIO_AUTH), or pass --insecure-no-auth "
            "if you really want an open studio.",
        ]
    return []


def warm_up(ctx) -> None:
    """Load the embedded model and generate one token, so that the first request (a chat's
    first streamed token) does not pay for loading and for generation's lazy imports."""
    from studio.generate import GenerationSettings, generate
    from studio.models.load import ModelLoadError

    with contextlib.suppress(ModelLoadError, OSError, ValueError), ctx.use("") as loaded:
        generate(loaded, "", GenerationSettings(max_new_tokens=1, greedy=True))


def main(argv: list[str] | None = None) -> int:
    from studio.priority import at_normal_priority, lower_app_priority

    # First: every thread the app starts from here on yields the CPU to training runs,
    # which start at the priority the app was started with (studio/priority.py).
    lower_app_priority()
    args = parse_args(argv)
    auth = parse_auth(args.auth or os.environ.get(AUTH_ENV))
    problems = check_exposure(args.host, args.share, auth, args.insecure_no_auth)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2

    from studio.ui.app import (
        StudioContext,
        build_app,
        calm_idle_queue,
        confined_roots,
        launch_options,
    )
    from studio.workspace import WorkspaceError, open_workspace

    try:
        workspace = open_workspace(args.workspace)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from studio.models.template_guard import guard_templates

    guard_templates()  # a template that loops for ever must not hang the app for everyone
    exposed = is_exposed(args.host, args.share)
    if exposed:
        from studio.safety import confine_app

        # Every path a browser names, in every endpoint, stays inside these folders.
        confine_app(models=confined_roots(workspace), files=[workspace.root])
    ctx = StudioContext(
        workspace=workspace, local_roots=confined_roots(workspace) if exposed else None
    )
    demo = build_app(ctx)
    # Load the default model while the server starts, so the first click does not wait for
    # the imports behind it (~3 s cold). A failure here is reported when the user loads it.
    threading.Thread(target=warm_up, args=(ctx,), daemon=True, name="warm-up").start()
    print(f"Workspace: {workspace.root}", flush=True)
    # The web server starts at the user's priority, so pages and new clients are answered on
    # a busy machine; the work behind each event runs lowered (studio/priority.py).
    demo.queue(default_concurrency_limit=1)
    calm_idle_queue(demo)
    at_normal_priority(
        lambda: demo.launch(
            prevent_thread_lock=True,
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            auth=auth,
            inbrowser=not args.no_browser,
            ssr_mode=False,
            show_error=True,
            allowed_paths=[],
            **launch_options(),
        )
    )
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
