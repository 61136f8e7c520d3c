"""The ``npusim`` command: run, compile, validate, list, plus commands other modules register.

Every error npusim raises on purpose becomes one line on stderr and exit code 2; no traceback.
So does a missing optional package (npusim.extras): the line names the extra to install.
A warning (a prompt past the model's ``max_position_embeddings``) is one line on stderr,
``npusim: warning: …``, and the command goes on.
Subcommands live in their own modules and expose ``register(subparsers)``; each registered
parser sets ``func`` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn, TextIO

from npusim import progress
from npusim.errors import NpusimError, SpecError

__all__ = ["main"]

# Modules that add subcommands. Each exposes register(subparsers) -> None.
COMMAND_MODULES: tuple[str, ...] = (
    "npusim.commands.core",
    "npusim.commands.dram",
    "npusim.commands.llm",
    "npusim.commands.serve",
    "npusim.commands.sweep",
    "npusim.commands.plot",
    "npusim.commands.calibrate",
    "npusim.commands.schema",
)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (``npusim run: error: argument --rows: ...``)
    and no usage block, like every other error of npusim."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="npusim", description="Cycle-approximate NPU architecture simulator")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _warning_line(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """A warning as one line on stderr (no source line, no file position)."""
    text = " ".join(str(message).split("\n"))
    print(f"npusim: warning: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings(), progress.shown(not getattr(args, "quiet", False)):
            warnings.showwarning = _warning_line
            return int(args.func(args) or 0)
    except SpecError as exc:
        # One line: the first problem; `npusim validate` lists every one.
        first = exc.issues[0].format(exc.source) if exc.issues else str(exc)
        more = len(exc.issues) - 1
        tail = f" (and {more} more: `npusim validate` lists them all)" if more > 0 else ""
        print(f"npusim: error: {first}{tail}", file=sys.stderr)
        return 2
    except NpusimError as exc:
        text = " ".join(str(exc).split("\n"))
        print(f"npusim: error: {text}", file=sys.stderr)
        return 2
    except ImportError as exc:
        # An optional package imported past npusim.extras.require: still one line naming it.
        from npusim.extras import EXTRAS, message

        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        print(f"npusim: error: {message(top)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`npusim run | head`): not an error
        sys.stderr.close()
        return 0
    except (OSError, ValueError) as exc:
        print(f"npusim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("npusim: interrupted", file=sys.stderr)
        return 130


# Commands whose process may end without the interpreter's teardown: they start no worker
# process or thread that an exit handler has to stop (a sweep does: its workers, Dask).
_QUICK_EXIT = frozenset({"run", "llm", "serve", "compile", "validate", "list", "schema",
                         "dram-bench", "plot", "calibrate"})


def entry() -> None:
    """The ``npusim`` command: :func:`main`, then the process ends.

    Once a command has returned, its files are written and closed (atomically) and only
    stdout and stderr hold anything: they are flushed and the process leaves with
    ``os._exit``, skipping the interpreter's teardown of every module and object (about
    0.25 s of CPU after a simulation: numba's and LLVM's objects). A command that started
    worker processes (``sweep``), or an exception on its way out, takes the normal exit."""
    code = main()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in _QUICK_EXIT:
        for stream in (sys.stdout, sys.stderr):
            # the reader went away, or main closed the stream: nothing left to tell
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
