"""The command line's parsing: each subcommand's own usage with `[-- CMD ARGS...]` and
examples, a command given without `--` caught, and "did you mean" for misspellings.

Kept apart from cli.py, which only declares the subcommands.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage ends with ``[-- CMD ARGS...]`` when the subcommand
    runs a command given after ``--``, and whose help ends with examples."""

    def __init__(
        self,
        *args: Any,
        command_metavar: str | None = None,
        command_role: str = "the command",
        examples: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.command_metavar = command_metavar
        self.command_role = command_role
        self.examples = tuple(examples)
        self.commands: Mapping[str, CommandParser] = {}

    def _with_command(self, usage: str) -> str:
        if self.command_metavar is None:
            return usage
        usage = usage.rstrip("\n")
        suffix = f"[-- {self.command_metavar}]"
        last = usage.rsplit("\n", 1)[-1]
        # argparse's own width, so that the suffix wraps where its options do.
        width = shutil.get_terminal_size().columns - 2
        if len(last) + 1 + len(suffix) <= width:
            return f"{usage} {suffix}\n"
        # Wrapped as argparse wraps: under the first option, after "usage: PROG ".
        return f"{usage}\n{' ' * (len('usage: ') + len(self.prog) + 1)}{suffix}\n"

    def format_usage(self) -> str:
        return self._with_command(super().format_usage())

    def format_help(self) -> str:
        text = super().format_help()
        plain = super().format_usage().rstrip("\n")
        text = text.replace(plain, self._with_command(plain).rstrip("\n"), 1)
        if self.examples:
            text += "\nexamples:\n" + "".join(f"  {line}\n" for line in self.examples)
        return text


def _fail(parser: CommandParser, message: str) -> NoReturn:
    parser.print_usage(sys.stderr)
    parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    # Compared without their dashes, which every option shares.
    bare = {choice.lstrip("-"): choice for choice in choices}
    close = difflib.get_close_matches(word.lstrip("-"), list(bare), n=1, cutoff=0.6)
    return f" (did you mean {bare[close[0]]!r}?)" if close else ""


def check_subcommand(parser: CommandParser, argv: Sequence[str]) -> None:
    """No command, or an unknown one: say which exist (and the likely one) before argparse
    answers with its bare "required: COMMAND" or a list of choices."""
    names = list(parser.commands)
    if not argv:
        sys.stderr.write(parser.format_help())
        parser.exit(
            EXIT_USAGE,
            "\npluginconf: error: no command given; choose one above, e.g. `pluginconf plugin` "
            "(checks the bundled reference plugin); `pluginconf COMMAND --help` for its "
            "options\n",
        )
    first = argv[0]
    if first in parser.commands or first in ("-h", "--help", "--version"):
        return
    if first.startswith("-"):
        _fail(
            parser,
            f"unrecognized option {first!r}: a subcommand's options go after it, as in "
            f"pluginconf plugin {first} ...\n  commands: {', '.join(names)}",
        )
    if "/" in first:
        hint = f"; to check it as a plugin: pluginconf plugin -- {shlex.join(argv)}"
    else:
        hint = _did_you_mean(first, names)
    _fail(parser, f"unknown command {first!r}{hint}\n  commands: {', '.join(names)}")


def check_leftovers(parser: CommandParser, command: str, extras: Sequence[str]) -> None:
    """What the subcommand did not recognise: a command given without `--`, or an unknown
    option; reported with the subcommand's own usage."""
    if not extras:
        return
    sub = parser.commands[command]
    if sub.command_metavar is not None and not extras[0].startswith("-"):
        _fail(
            sub,
            f"{extras[0]!r} is not an option of {sub.prog}: put {sub.command_role} after "
            f"`--`, as in: {sub.prog} [OPTIONS] -- {shlex.join(extras)}",
        )
    options = [s for action in sub._actions for s in action.option_strings]
    unknown = extras[0].split("=", 1)[0]
    if unknown.startswith("-"):
        message = f"unrecognized option {unknown!r}{_did_you_mean(unknown, options)}"
        if len(extras) > 1:
            message += f" (left over: {shlex.join(extras)})"
    else:
        message = f"unrecognized arguments: {shlex.join(extras)}"
    _fail(sub, message + f"\n  `{sub.prog} --help` lists its options")
