"""Command line: ``ambs search PROBLEM ...``. Parses (:mod:`ambs.cli.parser`),
checks and calls the package (:mod:`ambs.cli.commands`).

Every user mistake ends in one line ``ambs: error: ...`` and exit code 2;
a run that had to stop because results could not be written exits 1.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import warnings
from typing import Any

from ambs.cli.commands import (
    _is_multi_fidelity,
    _make_search,
    cmd_analyze,
    cmd_search,
    cmd_simulate,
)
from ambs.cli.parser import DEFAULT_MAX_EVALS, METHOD_OPTIONS, build_parser, use_submit_config
from ambs.cli.submit_cmd import cmd_submit
from ambs.errors import AmbsError, RecorderError

__all__ = ["DEFAULT_MAX_EVALS", "METHOD_OPTIONS", "build_parser", "main"]

# What tests and scripts reach for by this module's name.
_make_search = _make_search
_is_multi_fidelity = _is_multi_fidelity

def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
    return f"ambs: warning: {message}\n"


def _one_line(exc: BaseException) -> str:
    """An error's text on one line (ConfigSpace and user exceptions may span several)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ambs`` command."""
    warnings.formatwarning = _format_warning
    # `kill -USR2 <pid>` prints every thread's Python stack: a hung rank says where.
    try:
        faulthandler.register(signal.SIGUSR2, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor
        pass
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        use_submit_config(parser, argv)  # a cluster's own [submit] settings, as defaults
    except AmbsError as exc:
        print(f"ambs: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        if args.command == "search":
            return cmd_search(args)
        if args.command == "submit":
            return cmd_submit(args)
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "analyze":
            return cmd_analyze(args)
    except RecorderError as exc:
        print(f"ambs: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except AmbsError as exc:
        print(f"ambs: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ambs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ambs analyze summary ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
