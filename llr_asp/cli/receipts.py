"""The commands for decision receipts (DESIGN §6, §8): receipt verify, receipt audit, receipt key,
and activity (the service's decisions counted, from its log)."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..core.errors import UsageError
from ..core.files import default_state_dir
from .app import RulesOption, app, print_json, user_errors

if TYPE_CHECKING:
    from ..formats.receipt_log import ReceiptLog

receipt_app = typer.Typer(
    name="receipt",
    help="Decision receipts: verify one against the answers it was made from, audit the service's "
    "log (a hash chain), make a signing key.",
    no_args_is_help=True,
)
app.add_typer(receipt_app)

LOG_FILE = "receipts.sqlite3"
"""The log's file in the state directory (as `llr-asp serve` keeps it: web/receipts.py)."""

StateDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--state-dir",
        metavar="DIR",
        help="The state directory of `llr-asp serve` (its receipt log); default a per-user cache directory.",
        show_default=False,
    ),
]


DatabaseOption = Annotated[
    Optional[str],
    typer.Option(
        "--database",
        metavar="URL",
        help="The PostgreSQL log of `llr-asp serve --database URL` (postgresql://USER@HOST/DB; its "
        "password in ~/.pgpass or $PGPASSWORD), instead of --state-dir's.",
        show_default=False,
    ),
]


def _log_file(state_dir: Path | None) -> Path:
    return (state_dir or default_state_dir()) / LOG_FILE


def _log(state_dir: Path | None, database: str | None) -> ReceiptLog:
    """The service's log: PostgreSQL with --database, else the SQLite file in --state-dir."""
    from ..formats.receipt_log import existing_log

    if database is not None and state_dir is not None:
        raise UsageError("give --state-dir DIR or --database URL, not both: a log is in one of them")
    if database is not None:
        require_psycopg()
    return existing_log(database, _log_file(state_dir))


def require_psycopg() -> None:
    """--database needs psycopg (the postgres extra): a UsageError naming the pip command that
    adds it to this installation, if it is missing."""
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        from .install import install_command

        raise UsageError(f"--database needs the postgres extra (psycopg): {install_command('postgres')}")


def _receipt_text(given: str) -> tuple[str, str | None]:
    """The receipt itself, or read from a file (`-`: standard input): the receipt alone, or the
    service's (or `explain --format json --receipt`'s) answer for one policy, with its "receipt"
    (and, from `explain --receipt`, its "receipt_salt"); the receipt, and its salt if given."""
    if given.count(".") == 2 and given.startswith("eyJ") and "/" not in given:
        return given, None
    try:
        text = sys.stdin.read() if given == "-" else Path(given).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise UsageError(
            f"{given}: cannot be read ({reason}); give a receipt or a file holding one"
        ) from None
    if not text.lstrip().startswith(("{", "[")):
        return text, None
    try:
        said = json.loads(text)
    except ValueError:
        raise UsageError(f"{given}: not JSON, nor a receipt; give a receipt or a decision with one") from None
    if not isinstance(said, dict) or not isinstance(said.get("receipt"), str):
        raise UsageError(
            f'{given}: holds no decision with a "receipt" (an answer for several policies: '
            "give one policy's, or its receipt)"
        )
    salt = said.get("receipt_salt")
    return str(said["receipt"]), salt if isinstance(salt, str) else None


SaltOption = Annotated[
    Optional[str],
    typer.Option(
        "--salt",
        metavar="HEX",
        help="The receipt's salt (`llr-asp receipt salt RECEIPT` prints it from the log), when the "
        "log is not given: the answers' hash is keyed with it, and the receipt does not carry it.",
    ),
]


@receipt_app.command("verify")
def verify(
    receipt: Annotated[
        str,
        typer.Argument(
            metavar="RECEIPT", help="The receipt (a compact JWS), a file holding it, or - (stdin)."
        ),
    ],
    answers: Annotated[
        str,
        typer.Option(
            "--answers",
            metavar="FILE",
            help="The patient record (or QuestionnaireResponse) the decision was made from; - for stdin.",
        ),
    ],
    jwks: Annotated[
        Optional[str],
        typer.Option(
            "--jwks",
            metavar="FILE|URL",
            help="The service's public keys: its /.well-known/jwks.json saved in FILE, or its URL "
            "(http or https; fetched within 5 s, at most 1 MiB, no redirects).",
        ),
    ] = None,
    state_dir: StateDirOption = None,
    database: DatabaseOption = None,
    salt: SaltOption = None,
    rules: RulesOption = None,
) -> None:
    """Check a decision receipt: its signature, the answers' hash, and the decision re-made.

    Checks the signature with --jwks FILE or URL (or the keys of the log in --state-dir, which also
    checks that the log holds the receipt as a link of its chain), recomputes the SHA-256 of the
    answers in canonical JSON, and decides again under the rule set (--rules DIR: the one named
    by the receipt's rules sha256). Exit 0 when all agree; exit 1 with one line per difference.
    """
    from ..core.documents import read_patient
    from ..core.reasoner import Reasoner
    from ..formats.receipts import Receipt, answers_hash, differences, fetch_jwks, read_jwks, salt_bytes

    with user_errors():
        if jwks is None and state_dir is None and database is None:
            raise UsageError(
                "give --jwks FILE (the service's /.well-known/jwks.json) or --state-dir DIR or "
                "--database URL (its log)"
            )
        text, saved_salt = _receipt_text(receipt)
        read = Receipt.read(text)
        logged = state_dir is not None or database is not None
        log = _log(state_dir, database) if logged else None
        kept = log.find(read.hash) if log is not None else None
        if kept is not None:
            keyed = kept.salt  # None: a receipt from before salts, its answers hashed plainly
        elif salt is not None or saved_salt is not None:
            keyed = salt if salt is not None else saved_salt
            salt_bytes(str(keyed))  # not a salt: one line, now
        elif log is None:
            raise UsageError(
                "the answers' hash is keyed with the receipt's salt, which the receipt does not carry: "
                "give --state-dir DIR or --database URL (the log keeps it), or --salt HEX"
            )
        else:
            keyed = None  # not in this log: said below
        keys = {} if jwks is None else fetch_jwks(jwks) if "://" in jwks else read_jwks(Path(jwks))
        if log is not None:
            from ..formats.receipts import public_keys

            keys = {**public_keys(log.jwks(), log.where), **keys}
        reasoner = Reasoner.load(rules)
        record = read_patient(answers, reasoner.rules)
    found: list[str] = []
    if not read.signed_by(keys):
        known = "its key is not listed" if read.kid not in keys else "it was not made with that key"
        found.append(f"signature: does not verify ({known}: kid {read.kid})")
    policy = str(read.claims["policy"])
    if policy not in reasoner.rules.policies:
        found.append(f"policy: {policy!r} is not a policy of this rule set; give --rules DIR")
    else:
        [decision] = reasoner.decide(record, [reasoner.rules.policies[policy]])
        if log is None or kept is not None or keyed is not None:
            found += differences(read.claims, decision, answers_hash(record, keyed))
        else:  # the answers cannot be checked without the salt the log would keep
            found += [d for d in differences(read.claims, decision, "") if not d.startswith("the answers'")]
    if log is not None:
        if kept is None:
            found.append(f"log: {log.where} holds no such receipt")
        elif kept.prev != read.claims["prev"]:
            found.append(f"log: the receipt's prev is not the link its row names ({kept.prev[:16]}…)")
    if found:
        for line in found:
            typer.echo(f"differs: {line}")
        raise typer.Exit(1)
    claims = read.claims
    robust = "robust" if claims["robust"] else f"not robust: possibly {', '.join(claims['possible'])}"
    typer.echo(
        f"all agree: receipt {claims['jti']} is signed (kid {read.kid}), the answers hash to its "
        f"sha256, and {claims['policy']} decides {claims['decision']} ({robust}) under rules "
        f"{claims['rules'][:12]}…" + (" ; the log holds it in its chain" if log is not None else "")
    )


@receipt_app.command("audit")
def audit(state_dir: StateDirOption = None, database: DatabaseOption = None) -> None:
    """Walk the service's receipt log (--state-dir's, or PostgreSQL's with --database): every
    receipt signed by a listed key and naming the one before it as its prev. Exit 0 when the
    chain is unbroken; exit 1 with each break."""
    from ..formats.receipt_log import LogUnavailable

    with user_errors():
        log = _log(state_dir, database)
        try:
            found = log.audit()
        except LogUnavailable as error:
            raise UsageError(f"{error}; the log cannot be read") from None
    for line in found.breaks:
        typer.echo(f"break: {line}")
    if found.breaks:
        typer.echo(f"{len(found.breaks)} breaks in {found.receipts} receipts")
        raise typer.Exit(1)
    ends = f", ending {found.last}" if found.last else ""
    typer.echo(f"unbroken: {found.receipts} receipts from {found.first}{ends}")


@receipt_app.command("salt")
def salt(
    receipt: Annotated[
        str,
        typer.Argument(
            metavar="RECEIPT", help="The receipt (a compact JWS), a file holding it, or - (stdin)."
        ),
    ],
    state_dir: StateDirOption = None,
    database: DatabaseOption = None,
) -> None:
    """Print a receipt's salt from the service's log: the key of its answers' hash, which the
    receipt does not carry. Give it (`receipt verify --salt`) to whoever must verify the receipt
    against the answers without the log; with the salt, the receipt confirms a guess of them."""
    from ..formats.receipts import Receipt

    with user_errors():
        read = Receipt.read(_receipt_text(receipt)[0])
        kept = _log(state_dir, database).find(read.hash)
        if kept is None:
            raise UsageError(f"receipt {read.claims['jti']}: not in this log; give the log that issued it")
        if kept.salt is None:
            raise UsageError(
                f"receipt {read.claims['jti']}: made before salts, its answers are hashed plainly"
            )
    typer.echo(kept.salt)


@receipt_app.command("key")
def key(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The private key's file (PEM, mode 600).")],
) -> None:
    """Make an Ed25519 signing key in FILE (unless it is there) and print its public JWKS: for
    `explain --receipt FILE`, and for `receipt verify --jwks`."""
    from ..formats.receipts import load_signer, make_key

    with user_errors():
        if file.is_dir():
            raise UsageError(f"{file}: is a directory; give a file path")
        try:
            made = make_key(file)
        except OSError as error:
            raise UsageError(f"{file}: cannot be written ({error.strerror})") from None
        signer = load_signer(file)
    if made:
        typer.echo(f"llr-asp: made {file}; keep it private", err=True)
    print_json({"keys": [signer.jwk]})


class ActivityFormat(str, enum.Enum):
    json = "json"
    csv = "csv"


@app.command()
def activity(
    state_dir: StateDirOption = None,
    database: DatabaseOption = None,
    format: Annotated[
        ActivityFormat, typer.Option("--format", "-f", help="json for programs, csv for spreadsheets.")
    ] = ActivityFormat.json,
) -> None:
    """Count the service's decisions by month, policy, edition, decision and robustness, from its
    receipt log (as /api/v1/activity): nothing in it identifies a patient."""
    from ..formats.receipt_log import LogUnavailable, activity_csv

    with user_errors():
        try:
            rows: list[dict[str, Any]] = _log(state_dir, database).activity()
        except LogUnavailable as error:
            raise UsageError(f"{error}; the log cannot be read") from None
    if format is ActivityFormat.csv:
        sys.stdout.write(activity_csv(rows))
    else:
        print_json(rows)
