"""The command line: the only place that prints, prompts or exits.

Each subcommand lives in its own module with `register(subparsers)`; the module's handler
returns an exit code. Stages raise `StackctlError`; `main` turns it into one message.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from stackctl import __version__
from stackctl.cli import commands
from stackctl.cli.output import internal_error, report_error
from stackctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_SIGPIPE, StackctlError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command` alone when it is known (its module only is imported), else for
    every command."""
    parser = argparse.ArgumentParser(
        prog="stackctl",
        description="Compile hardware + intent into a locked local-LLM stack and deploy it.",
    )
    parser.add_argument("--version", action="version", version=f"stackctl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in commands.modules_for(command):
        module.register(sub)
    return parser


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: temporary files go, child playbooks are stopped."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


# stackctl uses no pydantic plugins. Looking for them reads the entry points of every installed
# package when the first validator is built (pydantic's documented switch turns that off), a
# cost `plan` pays for nothing; a user who set the variable keeps their value.
_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


def main(argv: Sequence[str] | None = None) -> int:
    set_here = _NO_PLUGINS not in os.environ
    if set_here:
        os.environ[_NO_PLUGINS] = "__all__"
    try:
        if threading.current_thread() is not threading.main_thread():
            return _main(argv)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return _main(argv)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if set_here:
            os.environ.pop(_NO_PLUGINS, None)


def _startup(build: Callable[[], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Imports make tens of thousands of objects that live as long as the process (classes,
    validators); the cyclic GC would walk them again and again for nothing. A CLI process
    builds its parser with the GC off, then freezes what exists so later passes skip it."""
    gc.disable()
    try:
        return build()
    finally:
        gc.freeze()
        gc.enable()


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the line: the first word that is not one of the main options."""
    for word in argv:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word
    return None


def _main(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if argv is None:
        parser = _startup(lambda: build_parser(_command(words)))
    else:
        parser = build_parser(_command(words))
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # argparse already printed its usage message
        return EXIT_BAD_INPUT if exc.code else 0
    try:
        code: int = args.handler(args)
    except StackctlError as exc:
        if args.debug:
            traceback.print_exc()
        report_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`stackctl ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush
        return EXIT_SIGPIPE
    except Exception as exc:  # a bug or an OS fault: still one line, the traceback on --debug
        if args.debug:
            raise
        report_error(internal_error(exc))
        return EXIT_FAILED
    return code
