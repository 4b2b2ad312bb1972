"""The client subcommands' arguments (argparse only, so `mlagent serve` does not load the client).

The behaviour is in `commands`, imported when a client command runs.
"""

from __future__ import annotations

import argparse

DEFAULT_URL = "http://127.0.0.1:8000"


def _dispatch(args: argparse.Namespace) -> int:
    from .commands import dispatch

    return dispatch(args)


def connection_options(top_level: bool) -> argparse.ArgumentParser:
    """--url and --token, accepted before or after the subcommand (the token is never shown back).
    A subcommand's copy has no default, so it does not hide a value given before the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    default = None if top_level else argparse.SUPPRESS
    parent.add_argument("--url", default=default, help=f"server URL (env MLAGENT_URL; default {DEFAULT_URL})")
    parent.add_argument("--token", default=default, metavar="HF_TOKEN",
                        help="Hugging Face token (env HF_TOKEN, preferred: a flag shows in the process list)")
    return parent


def add_commands(sub: argparse._SubParsersAction) -> None:
    common = connection_options(top_level=False)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON for scripts")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common, as_json])
        p.set_defaults(handler=_dispatch)
        return p

    def turn_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--max-cost", type=float, metavar="USD", help="the session's cost cap in USD (0-500]")
        p.add_argument("--instructions", help="developer guidance for this turn")
        mode = p.add_mutually_exclusive_group()
        mode.add_argument("--follow", dest="follow", action="store_true", default=True,
                          help="follow the turn live (the default)")
        mode.add_argument("--detach", dest="follow", action="store_false",
                          help="submit, print the id and return")

    p = command("run", "submit a task as a background turn and follow it live")
    p.add_argument("task", help="the task ('-' reads it from stdin)")
    p.add_argument("--model", help="model id (see `mlagent models`)")
    turn_options(p)

    p = command("continue", "continue the session of a response with a new message")
    p.add_argument("response_id")
    p.add_argument("message", help="the message ('-' reads it from stdin)")
    turn_options(p)

    p = command("attach", "replay a response's events and follow it live")
    p.add_argument("response_id")
    p.add_argument("--after", type=int, default=-1, metavar="SEQ", help="start after this event number")

    p = command("ls", "list my recent responses, newest first")
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    p.add_argument("--after", metavar="RESPONSE_ID", help="the page after this response")

    p = command("show", "show a response: status, answer, tool calls, artifacts, cost")
    p.add_argument("response_id")

    p = command("cancel", "cancel a running response (asynchronous, idempotent)")
    p.add_argument("response_id")

    p = command("approve", "answer a response paused on approval_required")
    p.add_argument("response_id")
    p.add_argument("--deny", action="store_true", help="deny the pending actions (the agent is told)")
    p.add_argument("--cap", type=float, metavar="USD", help="raise the session's cap to this before resuming")
    p.add_argument("--feedback", help="a message passed to the agent with the decision")
    p.add_argument("--follow", action="store_true", help="follow the turn after answering")

    command("models", "list the model ids the server accepts")
    command("usage", "my LLM usage and cost totals")
