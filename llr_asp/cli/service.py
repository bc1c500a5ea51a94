"""The commands for clinical systems: serve (the page, the JSON API, FHIR and CDS Hooks) and fhir
questionnaire."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..core.errors import UsageError
from ..core.ruleset import load_rules
from .app import (
    RulesOption,
    app,
    print_json,
    user_errors,
)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on; 0.0.0.0 makes the service reachable from other machines."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="Server processes, each with its own warm reasoner."),
    ] = 1,
    cds_issuer: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cds-issuer", metavar="ISS", help="An EHR allowed to call the CDS Hooks services (repeat)."
        ),
    ] = None,
    cds_jwks: Annotated[
        Optional[Path],
        typer.Option(
            "--cds-jwks", metavar="FILE", help="The public keys (JWKS) of the allowed EHRs' tokens."
        ),
    ] = None,
    fhir_server: Annotated[
        Optional[list[str]],
        typer.Option(
            "--fhir-server",
            metavar="ISS=URL",
            help="A FHIR base URL the CDS Hooks calls of issuer ISS may name as fhirServer (repeat); "
            "the service fetches missing prefetch from these only, never from another address.",
        ),
    ] = None,
    dtr_launch_url: Annotated[
        Optional[str],
        typer.Option(
            "--dtr-launch-url",
            metavar="URL",
            help="The SMART launch URL of the EHR's form filler (a DTR app): cards then carry a smart "
            "link there, its appContext naming the Questionnaire and the order.",
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="CDS Hooks without authentication: for local use only.")
    ] = False,
    public_url: Annotated[
        Optional[str],
        typer.Option(
            "--public-url",
            metavar="URL",
            help="The base URL callers use (CDS Hooks tokens' aud, card links); default http://HOST:PORT.",
        ),
    ] = None,
    state_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Where used CDS Hooks token ids and the decision receipts' log are kept for all "
            "workers (SQLite), and the receipts' signing key; default a per-user cache directory.",
        ),
    ] = None,
    signing_key: Annotated[
        Optional[Path],
        typer.Option(
            "--signing-key",
            metavar="FILE",
            help="The PEM Ed25519 private key that signs decision receipts (mode 600); default "
            "receipt-key.pem in the state directory, made on first start.",
        ),
    ] = None,
    keep_days: Annotated[
        Optional[int],
        typer.Option(
            "--keep-days",
            min=1,
            max=36500,
            metavar="DAYS",
            help="Delete receipts older than DAYS from the log (the activity counts are kept); "
            "default: kept for ever.",
        ),
    ] = None,
    database: Annotated[
        Optional[str],
        typer.Option(
            "--database",
            metavar="URL",
            help="Keep the decision receipts' log in PostgreSQL (postgresql://USER@HOST/DB; the "
            "postgres extra), one chain for several hosts; its password in ~/.pgpass or $PGPASSWORD.",
        ),
    ] = None,
    redis: Annotated[
        Optional[str],
        typer.Option(
            "--redis",
            metavar="URL",
            help="Keep used token ids in Redis instead (several hosts behind one balancer); a URL "
            "with a password is refused here: use $LLR_ASP_REDIS_URL or --redis-file.",
        ),
    ] = None,
    redis_file: Annotated[
        Optional[Path],
        typer.Option(
            "--redis-file",
            metavar="FILE",
            help="The Redis URL (with its password) on the first line of FILE, readable by its owner only.",
        ),
    ] = None,
    proxy: Annotated[
        Optional[list[str]],
        typer.Option(
            "--proxy",
            metavar="ADDR",
            help="A proxy whose X-Forwarded-* headers are believed (repeat); default 127.0.0.1.",
        ),
    ] = None,
    cors_origin: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cors-origin",
            metavar="ORIGIN",
            help="A browser origin allowed to call /cds-services, /fhir/ and /api/ (repeat; * for any); "
            "default none.",
        ),
    ] = None,
    max_header_kib: Annotated[
        int,
        typer.Option(
            "--max-header-kib", min=1, max=1024, help="Request line and headers, at most (400 past it)."
        ),
    ] = 16,
    max_batch_mib: Annotated[
        int,
        typer.Option(
            "--max-batch-mib", min=1, max=10240, help="A batch request's body, at most (413 past it)."
        ),
    ] = 100,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", min=1, max=100_000, help="Connections a worker takes (503 past it)."
        ),
    ] = 512,
    max_client_connections: Annotated[
        int,
        typer.Option(
            "--max-client-connections",
            min=1,
            max=100_000,
            help="Connections a worker takes from one client address, --proxy addresses aside (503 past it).",
        ),
    ] = 32,
    min_body_kib_per_second: Annotated[
        int,
        typer.Option(
            "--min-body-kib-per-second",
            min=1,
            max=1 << 20,
            help="A request body must average this once the head deadline (10 s) has passed, or the "
            "connection is closed: a body dripped a byte a second holds no cohort slot.",
        ),
    ] = 16,
    write_seconds: Annotated[
        float,
        typer.Option(
            "--write-seconds",
            min=1.0,
            max=3600.0,
            help="The longest an answer waits for its client to read; then the connection is dropped.",
        ),
    ] = 30.0,
    shutdown_seconds: Annotated[
        float,
        typer.Option(
            "--shutdown-seconds",
            min=0.0,
            max=3600.0,
            help="On SIGTERM, requests under way have this long to finish; then the worker stops.",
        ),
    ] = 30.0,
    rules: RulesOption = None,
) -> None:
    """Serve the clinicians' page, the JSON API, FHIR and CDS Hooks (needs the web extra).

    The page (/) asks the questionnaire one question at a time, shows the decision with its
    reasons, what is missing and what would have to change, and gives the letter; it works
    without JavaScript and loads nothing from another origin. The API (/api/v1/…) answers with
    exactly the JSON of the CLI's --format json; its OpenAPI document is /openapi.json and
    interactive docs are /docs. FHIR R4 (/fhir/): the Questionnaire of each policy, adaptive
    ($next-question), and a QuestionnaireResponse wherever a record is taken. CDS Hooks
    (/cds-services): a card per order-select or order-sign call, for calls whose JWT is signed
    by an EHR given with --cds-issuer and --cds-jwks. /policies/{id}: the policy as analysts
    read it. Patient answers travel in request bodies only and are never kept or logged; every
    decision carries a signed receipt (its claims, with a hash of the answers, appended to a
    log in --state-dir; public keys at /.well-known/jwks.json). Stop with Ctrl-C.
    """
    import importlib.util

    missing = [
        m for m in ("fastapi", "uvicorn", "jinja2", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        from .install import install_command

        typer.echo(
            f"llr-asp: error: serve needs the web extra ({', '.join(missing)} missing): "
            f"{install_command('web')}",
            err=True,
        )
        raise typer.Exit(2)
    import uvicorn

    from ..web.server import check_address, hand_to_workers, start_notes, uvicorn_options
    from ..web.settings import Settings, check_state_dir, default_state_dir, fhir_server_option, redis_url

    with user_errors():
        check_address(host, port)  # a port in use: one line here, not "serving" and uvicorn's error
        served = load_rules(rules)  # unusable rules: one line here, not a traceback in every worker
        if cds_jwks is not None and not cds_jwks.is_file():
            raise UsageError(f"--cds-jwks {cds_jwks}: no such file; give the JWKS of the allowed EHRs")
        if cds_jwks is not None:
            from ..web.tokens import read_jwks

            read_jwks(cds_jwks)  # an unusable JWKS: one line here, not a traceback in every worker
        check_state_dir(state_dir.resolve() if state_dir is not None else default_state_dir())
        if signing_key is not None:
            from ..formats.receipts import load_signer

            load_signer(signing_key)  # an unusable key: one line here, not a 503 on every decision
        if database is not None:
            from ..formats.receipt_log import LogUnavailable, PostgresLog, checked_database
            from .receipts import require_psycopg

            require_psycopg()
            try:  # unreachable, refused or no psycopg: one line here, not a 503 on every decision
                PostgresLog(checked_database(database)).close()
            except LogUnavailable as error:
                raise UsageError(f"--database: {error}") from None
        settings = Settings(
            public_url=public_url or f"http://{host}:{port}",
            state_dir=state_dir.resolve() if state_dir is not None else None,
            signing_key=signing_key.resolve() if signing_key is not None else None,
            keep_days=keep_days,
            database=database,
            redis=redis_url(redis, redis_file),
            proxies=tuple(proxy) if proxy else ("127.0.0.1",),
            cors_origins=tuple(cors_origin or ()),
            max_header_bytes=max_header_kib << 10,
            max_batch_body=max_batch_mib << 20,
            max_connections=max_connections,
            max_client_connections=max_client_connections,
            min_body_rate=min_body_kib_per_second << 10,
            write_seconds=write_seconds,
            shutdown_seconds=shutdown_seconds,
            fhir_servers=tuple(fhir_server_option(given) for given in fhir_server or ()),
            dtr_launch_url=dtr_launch_url,
        )
    hand_to_workers(settings, rules, tuple(cds_issuer or ()), cds_jwks, no_auth)
    for note in start_notes(
        served,
        settings,
        host,
        public_url is not None,
        bool(cds_issuer and cds_jwks),
        no_auth,
        tuple(cds_issuer or ()),
    ):
        typer.echo(f"llr-asp: {note}", err=True)
    typer.echo(f"llr-asp: serving http://{host}:{port}/ (API docs at /docs); Ctrl-C stops", err=True)
    uvicorn.run(
        "llr_asp.web:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(settings),
    )


fhir_app = typer.Typer(
    name="fhir",
    help="FHIR R4 for clinical systems: the Questionnaire derived from the rules. A FHIR "
    "QuestionnaireResponse is accepted wherever a patient record is (explain, whatif, next, batch).",
    no_args_is_help=True,
)
app.add_typer(fhir_app)


@fhir_app.command("questionnaire")
def fhir_questionnaire(
    policy: Annotated[
        str,
        typer.Option("--policy", "-p", help='Policy id (see `llr-asp policies`) or "all" for every field.'),
    ] = "all",
    rules: RulesOption = None,
) -> None:
    """Print the FHIR R4 Questionnaire (SDC) of a policy, derived from the field declarations.

    One item per field the policy tests, linkId = the field's dotted path, text = the question;
    grades are choice items with their rank (itemWeight), numbers decimal or integer items
    with their range and unit. Fill it in and give the QuestionnaireResponse to explain.
    """
    from ..formats.fhir import questionnaire

    with user_errors():
        ruleset = load_rules(rules)
        chosen = None if policy == "all" else ruleset.select(policy)[0]
    print_json(questionnaire(ruleset, chosen))
