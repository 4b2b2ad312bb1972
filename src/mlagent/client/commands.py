"""The client subcommands: run, attach, continue, ls, show, cancel, approve, models, usage.

Each returns an exit code (`Exit`). Configuration comes from `--url`/`MLAGENT_URL` and
`--token`/`HF_TOKEN` (or a hidden prompt on a terminal); the token is never printed and
never written anywhere.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sys
import uuid
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.prompt import FloatPrompt, Prompt

from . import live, views
from .api import Api, ApiError
from .parser import DEFAULT_URL
from .stream import EventStream, StreamLost
from .text import scrub


class Exit(IntEnum):
    """Documented in docs/cli.md; scripts rely on these numbers."""

    OK = 0  # completed (or submitted with --detach, or a command that is not a turn)
    FAILED = 1  # the response ended `failed`
    USAGE = 2  # bad command line or no token
    CANCELLED = 3  # the response ended `cancelled`
    APPROVAL = 4  # paused on `approval_required` and nobody here can answer (no terminal, or --json)
    INCOMPLETE = 5  # `incomplete` for another reason (server_restart): continue the session
    API = 6  # the server refused the request, or could not be reached
    DETACHED = 130  # Ctrl-C: this client left; the turn goes on


STATUS_EXIT = {"completed": Exit.OK, "failed": Exit.FAILED, "cancelled": Exit.CANCELLED}


class Context:
    """What every command needs: the API, where to print, and whether to print JSON."""

    def __init__(self, args: argparse.Namespace, need_token: bool = True) -> None:
        self.json = bool(getattr(args, "json", False))
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        url = getattr(args, "url", None) or os.environ.get("MLAGENT_URL") or DEFAULT_URL
        token = getattr(args, "token", None) or os.environ.get("HF_TOKEN")
        if not token and need_token:
            if not sys.stdin.isatty():
                raise UsageError("no token: set HF_TOKEN or pass --token")
            token = getpass.getpass("Hugging Face token (not shown): ").strip()
            if not token:
                raise UsageError("no token given")
        self.api = Api(url, token)

    @property
    def interactive(self) -> bool:
        return not self.json and sys.stdin.isatty()

    def out(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class UsageError(Exception):
    pass


def run_command(func: Callable[[Context, argparse.Namespace], int], args: argparse.Namespace,
                need_token: bool = True) -> int:
    """Run one command: API errors and Ctrl-C outside a follow become exit codes, never tracebacks."""
    try:
        ctx = Context(args, need_token)
    except UsageError as exc:
        Console(stderr=True).print(f"mlagent: {exc}", style="red", highlight=False)
        return Exit.USAGE
    except (KeyboardInterrupt, EOFError):
        return Exit.USAGE
    try:
        return func(ctx, args)
    except ApiError as exc:
        ctx.err.print(f"mlagent: {scrub(str(exc))}", style="red", markup=False)
        return Exit.API
    except KeyboardInterrupt:
        ctx.err.print("interrupted", style="yellow")
        return Exit.DETACHED
    finally:
        ctx.api.close()


# -- following a turn ----------------------------------------------------------------------

def follow(ctx: Context, response_id: str, *, after: int = -1, replaying: bool = False,
           polled: dict[str, Any] | None = None) -> int:
    """Show a turn live until it ends; answer approvals on a terminal; Ctrl-C detaches.
    `polled`: the response object as just fetched, shown before the first event arrives."""
    renderer: live.Renderer = (live.JsonRenderer(replaying) if ctx.json
                                 else live.TerminalRenderer(ctx.console, replaying))
    if polled is not None:
        renderer.prime(polled)
    stream = EventStream(ctx.api, response_id, after, on_retry=renderer.retrying)
    try:
        while True:
            with renderer.active():
                for event in stream.events():
                    renderer.handle(event)
            state = renderer.state
            if state.status == "incomplete" and state.reason == "approval_required":
                if not ctx.interactive:
                    approve_hint(ctx, response_id, state.pending)
                    return Exit.APPROVAL
                if not ask_approval(ctx, response_id, state.pending):
                    return detached(ctx, response_id)
                continue
            if state.status == "incomplete":
                ctx.err.print(f"The turn was interrupted ({state.reason}). Go on in the same session with:\n"
                              f"  mlagent continue {response_id} \"<message>\"", highlight=False, markup=False)
                return Exit.INCOMPLETE
            return STATUS_EXIT.get(state.status or "", Exit.FAILED)
    except (KeyboardInterrupt, EOFError):  # Ctrl-C anywhere, or Ctrl-D at the prompt
        return detached(ctx, response_id)
    except StreamLost as exc:
        ctx.err.print(f"mlagent: {exc}\nFollow it again later with: mlagent attach {response_id}",
                      style="red", markup=False)
        return Exit.API


def detached(ctx: Context, response_id: str) -> int:
    ctx.err.print(f"\nDetached: {response_id} goes on without this client.\n"
                  f"  follow it again:  mlagent attach {response_id}\n"
                  f"  or cancel it:     mlagent cancel {response_id}", highlight=False, markup=False)
    return Exit.DETACHED


def approve_hint(ctx: Context, response_id: str, pending: dict[str, Any] | None) -> None:
    cap = suggest_cap((pending or {}).get("budget") or {})
    ctx.err.print(f"{response_id} is waiting for approval. Answer it with one of:\n"
                  f"  mlagent approve {response_id}\n"
                  f"  mlagent approve {response_id} --cap {cap:g}\n"
                  f"  mlagent approve {response_id} --deny --feedback \"<what to do instead>\"",
                  highlight=False, markup=False)


def suggest_cap(budget: dict[str, Any]) -> float:
    """Room for the pending batch and as much again, in whole cents, within the API's 500."""
    cap, spent, estimate = (float(budget.get(k) or 0.0) for k in ("cap", "spent", "estimate"))
    return min(500.0, math.ceil(max(cap * 2, spent + 2 * estimate) * 100) / 100 or 1.0)


def ask_approval(ctx: Context, response_id: str, pending: dict[str, Any] | None) -> bool:
    """Ask approve / deny / new cap (+ feedback) and send it; False: the user chose to detach."""
    console = ctx.console
    choice = Prompt.ask("Approve? [bold]y[/]es · [bold]n[/]o (deny) · [bold]c[/]ap (approve with a new cap) · "
                        "[bold]d[/]etach", choices=["y", "n", "c", "d"], default="y", console=console)
    if choice == "d":
        return False
    cap = None
    if choice == "c":
        budget = (pending or {}).get("budget") or {}
        while True:
            cap = FloatPrompt.ask("New cap in USD", default=suggest_cap(budget), console=console)
            if 0 < cap <= 500:
                break
            console.print("The cap must be more than 0 and at most 500.", style="red")
    feedback = Prompt.ask("Feedback for the agent (Enter for none)", default="", show_default=False,
                          console=console).strip()
    try:
        result = ctx.api.approve(response_id, choice != "n", cap, feedback or None)
    except ApiError as exc:
        if exc.status != 409:
            raise
        console.print(f"Not sent: {exc.message}", style="yellow", highlight=False, markup=False)
        return True  # answered elsewhere meanwhile: follow what happens next
    console.print(f"→ {'approved' if choice != 'n' else 'denied'}; {response_id} is {result.get('status')}",
                  style="cyan", highlight=False, markup=False)
    return True


# -- the commands --------------------------------------------------------------------------

def submit(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """POST a background turn; a dropped POST is retried with the same Idempotency-Key,
    so it never starts two turns."""
    key = f"mlagent-cli-{uuid.uuid4().hex}"
    for attempt in range(3):
        try:
            return ctx.api.create(body, key)
        except ApiError as exc:
            if exc.status != 0 or attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_turn(ctx: Context, args: argparse.Namespace, body: dict[str, Any]) -> int:
    if args.max_cost is not None:
        body["max_cost_usd"] = args.max_cost
    if args.instructions:
        body["instructions"] = args.instructions
    created = submit(ctx, {**body, "background": True})
    rid = created["id"]
    if not args.follow:
        if ctx.json:
            ctx.out(created)
        else:
            ctx.console.print(f"{rid} {created.get('status')}\n  follow it:  mlagent attach {rid}\n"
                              f"  poll it:    mlagent show {rid}", highlight=False, markup=False)
        return Exit.OK
    return follow(ctx, rid)


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    task = sys.stdin.read() if args.task == "-" else args.task
    body: dict[str, Any] = {"input": task}
    if args.model:
        body["model"] = args.model
    return start_turn(ctx, args, body)


def cmd_continue(ctx: Context, args: argparse.Namespace) -> int:
    message = sys.stdin.read() if args.message == "-" else args.message
    return start_turn(ctx, args, {"input": message, "previous_response_id": args.response_id})


def cmd_attach(ctx: Context, args: argparse.Namespace) -> int:
    polled = ctx.api.get(args.response_id)  # a clear 404 before any stream opens
    return follow(ctx, args.response_id, after=args.after, replaying=True, polled=polled)


def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    response = ctx.api.get(args.response_id)
    if ctx.json:
        ctx.out(response)
    else:
        ctx.console.print(views.response_view(response), soft_wrap=True)
    return Exit.OK


def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    response = ctx.api.cancel(args.response_id)
    if ctx.json:
        ctx.out(response)
    elif response.get("status") in STATUS_EXIT:
        ctx.console.print(f"{args.response_id} is {response['status']}", highlight=False, markup=False)
    else:
        ctx.console.print(f"cancel requested; {args.response_id} stops when the interrupt lands "
                          f"(now {response.get('status')}; see `mlagent show {args.response_id}`)",
                          highlight=False, markup=False)
    return Exit.OK


def cmd_approve(ctx: Context, args: argparse.Namespace) -> int:
    response = ctx.api.approve(args.response_id, not args.deny, args.cap, args.feedback)
    status = response.get("status")
    if args.follow and status != "incomplete":
        if not ctx.json:
            ctx.console.print(f"→ {'denied' if args.deny else 'approved'}; following {args.response_id}",
                              style="cyan", highlight=False, markup=False)
        return follow(ctx, args.response_id, replaying=True)
    if ctx.json:
        ctx.out(response)
    else:
        ctx.console.print(f"{'denied' if args.deny else 'approved'}: {args.response_id} is {status}"
                          f"\n  follow it:  mlagent attach {args.response_id}", highlight=False, markup=False)
    if status == "incomplete":
        pending = response.get("pending_approval") or {}
        ctx.err.print("It paused again at once: the cap leaves no room for the pending batch.",
                      style="yellow", highlight=False)
        approve_hint(ctx, args.response_id, pending)
        return Exit.APPROVAL
    return Exit.OK


def cmd_ls(ctx: Context, args: argparse.Namespace) -> int:
    page = ctx.api.list(args.limit, args.after)
    if ctx.json:
        ctx.out(page)
        return Exit.OK
    ctx.console.print(views.response_table(page.get("data") or [], ctx.console.width))
    if page.get("has_more"):
        ctx.console.print(f"more: mlagent ls --after {page.get('last_id')}", style="dim", highlight=False,
                          markup=False)
    return Exit.OK


def cmd_models(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api.models()
    if ctx.json:
        ctx.out(data)
    else:
        for model in data.get("models") or []:
            mark = "  (default)" if model.get("default") else ""
            ctx.console.print(f"{model.get('id')}{mark}", highlight=False, markup=False)
    return Exit.OK


def cmd_usage(ctx: Context, args: argparse.Namespace) -> int:
    data = ctx.api.usage()
    if ctx.json:
        ctx.out(data)
    else:
        ctx.console.print(views.usage_view(data.get("usage") or {}))
    return Exit.OK


COMMANDS: dict[str, tuple[Callable[[Context, argparse.Namespace], int], bool]] = {
    # name: (function, needs a token)
    "run": (cmd_run, True), "continue": (cmd_continue, True), "attach": (cmd_attach, True),
    "ls": (cmd_ls, True), "show": (cmd_show, True), "cancel": (cmd_cancel, True), "approve": (cmd_approve, True),
    "models": (cmd_models, False), "usage": (cmd_usage, True),
}


def dispatch(args: argparse.Namespace) -> int:
    func, need_token = COMMANDS[args.command]
    return run_command(func, args, need_token)
