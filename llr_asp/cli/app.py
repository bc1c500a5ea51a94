"""The `llr-asp` application: its options, the shared command options, and how every command
ends: an error of the core as one line and exit code 2, a usage error likewise, Ctrl-C as one line
and 130, output that cannot be written as one line and 1, a fault of llr-asp as one line and 70.
Only this package prints and exits; the commands live in the modules for their users."""

from __future__ import annotations

import contextlib
import datetime
import enum
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.errors import LlrError, printable

HELP = (
    "Eligibility reasoner for NHS Leicester, Leicestershire and Rutland ICB commissioning "
    "policies (hip resurfacing ARP 55, knee resurfacing ARP 60). The policies are Answer Set "
    "Programming rules; clingo derives each decision with the reasons for it."
)

CONTEXT = {"help_option_names": ["-h", "--help"]}


class OneLineErrors(typer.core.TyperGroup):
    """The command group, whose usage errors (an unknown option, a bad --format value, a missing
    argument, a misspelt command) are one line on stderr and exit code 2, as every other error
    is, rather than click's boxed usage text; Ctrl-C is one line and exit code 130."""

    def main(self, *args: Any, **options: Any) -> Any:
        click = sys.modules[typer.BadParameter.__module__]  # click's exceptions, as typer carries them
        standalone = options.get("standalone_mode", True)
        options["standalone_mode"] = False
        try:
            code = super().main(*args, **options)
        except getattr(click, "NoArgsIsHelpError", ()) as error:  # `llr-asp` alone: the help
            shown = error.ctx.get_help()  # (typer prints it, and gives back nothing)
            if shown:
                typer.echo(shown, err=True)
            code = 2
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "llr-asp"
            message = error.format_message().rstrip(".")
            typer.echo(f"llr-asp: error: {printable(message)} (see `{where} -h`)", err=True)
            code = error.exit_code
        except click.ClickException as error:
            typer.echo(f"llr-asp: error: {printable(error.format_message())}", err=True)
            code = error.exit_code
        except typer.Abort:  # end of input at a prompt
            code = interrupted()
        if code == INTERRUPTED and not _said["interrupted"]:  # Ctrl-C in a command: typer's Exit(130)
            code = interrupted()
        if not standalone:
            return code
        sys.exit(code if isinstance(code, int) else 0)


INTERRUPTED = 130

_said = {"interrupted": False}


def hold_interrupts() -> None:
    """Ignore Ctrl-C from now on: the run is ending already."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupted(message: str = "llr-asp: interrupted") -> int:
    """Say once that the run was interrupted (Ctrl-C); the exit code for it."""
    hold_interrupts()
    if not _said["interrupted"]:
        typer.echo(message, err=True)
        _said["interrupted"] = True
    return INTERRUPTED


app = typer.Typer(
    name="llr-asp",
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)


def _show_version(asked: bool) -> None:
    if asked:
        from .install import version_line

        typer.echo(version_line())
        raise typer.Exit()


@app.callback(help=HELP)
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print llr-asp's version (and clingo's and Python's) and exit.",
        ),
    ] = False,
) -> None:
    """Options before the command."""


class Format(str, enum.Enum):
    text = "text"
    json = "json"


RulesOption = Annotated[
    Optional[Path],
    typer.Option(
        "--rules",
        metavar="DIR",
        help="Use the rule set (.lp files) in DIR instead of the bundled one.",
        show_default=False,
    ),
]

PatientArgument = Annotated[
    str,
    typer.Argument(metavar="PATIENT.json", help="The patient record (JSON), or - to read standard input."),
]

AsOfOption = Annotated[
    Optional[str],
    typer.Option(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="Decide under the edition of each policy in force on this day. Default: the record's "
        "referral date, else today.",
        show_default=False,
    ),
]


def as_of(text: str | None) -> datetime.date | None:
    """The day --as-of names; UsageError (exit 2) for anything but a real YYYY-MM-DD."""
    from ..core.errors import UsageError
    from ..core.ruleset import is_date

    if text is None:
        return None
    if not is_date(text):
        raise UsageError(
            f'--as-of: expected a date written YYYY-MM-DD, such as 2027-04-01, got "{printable(text)}"'
        )
    return datetime.date.fromisoformat(text)


RecordPolicyOption = Annotated[
    Optional[str],
    typer.Option(
        "--policy",
        "-p",
        help='Policy id (see `llr-asp policies`; a family: its edition in force) or "all". '
        'Default: the record\'s "policy", else all.',
        show_default=False,
    ),
]

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="text for people, json for programs.")]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the core's errors into one line on stderr and exit code 2."""
    try:
        yield
    except LlrError as error:
        typer.echo(f"llr-asp: error: {error}", err=True)
        raise typer.Exit(2) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_per_policy(objects: list[dict[str, Any]]) -> None:
    """One object for one policy, an array for several (DESIGN §6)."""
    from ..core.decision import per_policy

    print_json(per_policy(objects))


def console(stderr: bool = False) -> Any:
    """A console for people: wrapped at the terminal's width (or $COLUMNS), or, written to a file
    or a pipe, never wrapped (a line is as long as its text; the reader's tool wraps it, or not)."""
    from rich.console import Console  # imported only when people read the output

    console = Console(highlight=False, stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:  # COLUMNS: a width asked for
        return Console(highlight=False, stderr=stderr, width=UNWRAPPED)
    if console.width < MIN_WIDTH:  # COLUMNS=0 or 2 would print nothing, or a letter a line
        console = Console(highlight=False, stderr=stderr, width=80)
    return console


MIN_WIDTH = 40

UNWRAPPED = 100_000  # the width of a file or a pipe: wider than any line llr-asp writes


def main() -> None:
    """The console script. Typer turns every command's signature into options when it starts,
    about 1.3 ms a command (14 ms for all); a call that names a command has only that one
    turned. Anything else (no command, --help, a misspelt command) gets the whole app.

    Output that cannot be written (standard output closed, a full disk, a closed pipe) ends
    the run with one line on stderr and exit code 1, never a traceback or a silent exit 0.
    """
    _guard_streams()
    named = sys.argv[1] if len(sys.argv) > 1 else ""
    chosen = [c for c in app.registered_commands if _command_name(c) == named]
    command: Any = app
    if chosen:
        command = typer.Typer(
            name=app.info.name,
            cls=OneLineErrors,
            add_completion=False,
            pretty_exceptions_enable=False,
            context_settings=CONTEXT,
        )
        command.callback(help=HELP)(lambda: None)  # a group still: argv names the command
        command.registered_commands = chosen
    code: Any = 0
    try:
        command(prog_name="llr-asp")
    except SystemExit as exit:  # every command ends here: typer runs click in standalone mode
        code = exit.code
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling (starting up, say)
        code = interrupted()
    except OSError as error:  # a write that failed (click itself ends a closed pipe with exit 1)
        if error.errno not in WRITE_FAILURES:
            _unexpected(error)
        _cannot_write(error)
    except Exception as error:
        _unexpected(error)
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        _cannot_write(error)
    if code == INTERRUPTED:  # interrupted: end now, waiting for no thread (a worker pool's, say)
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    sys.exit(code)


def _guard_streams() -> None:
    """Standard output that cannot take every character (PYTHONIOENCODING=ascii) escapes it
    instead (✘ as \\u2718); closed standard output fails where it is written."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if sys.stdout is None:
        sys.stdout = _Closed()


class _Closed:
    """Standard output that was closed (`>&-`): writing to it fails as writing to any closed file."""

    def write(self, _: str) -> int:
        raise OSError(9, "standard output is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(9, "standard output is closed")


WRITE_FAILURES = {errno.EBADF, errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, errno.EDQUOT}


def _unexpected(error: BaseException) -> None:
    """A fault of llr-asp itself: one line, and the traceback only when asked for."""
    if os.environ.get("LLR_ASP_DEBUG"):
        raise error
    sys.stderr.write(
        f"llr-asp: error: unexpected failure ({type(error).__name__}: {printable(str(error))[:200]}); "
        "please report it (LLR_ASP_DEBUG=1 shows the traceback)\n"
    )
    sys.stderr.flush()
    os._exit(70)


def _cannot_write(error: BaseException) -> None:
    reason = getattr(error, "strerror", None) or str(error)
    sys.stderr.write(f"llr-asp: error: cannot write the output ({reason}); check where it goes\n")
    sys.stderr.flush()
    os._exit(1)  # not sys.exit: flushing standard output again at exit would fail again


def _command_name(command: typer.models.CommandInfo) -> str:
    assert command.callback is not None
    return command.name or command.callback.__name__.replace("_", "-")
