"""The service's receipts (DESIGN §6, §8): every decision that leaves the service is signed with
the service's key and its receipt appended to the log (`formats.receipt_log`) before it leaves;
a decision whose receipt cannot be kept is not given out (503).

The key is `--signing-key FILE`, else `receipt-key.pem` in the state directory, made (mode 600)
on first start; every key that has signed is listed at /.well-known/jwks.json, so receipts
signed before a rotation still verify. The log is `receipts.sqlite3` in the state directory, or
PostgreSQL with `--database URL` (several hosts, one chain). Opened on the first decision (or the first JWKS
request), by whichever thread asks first.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from ..core.decision import Decision
from ..core.errors import LlrError
from ..core.files import default_state_dir
from ..core.patient import Patient
from ..formats.receipt_log import LogUnavailable, ReceiptLog, activity_csv, open_log
from ..formats.receipts import (
    Receipt,
    ReceiptError,
    Signer,
    answers_hash,
    claims_of,
    differences,
    load_signer,
    make_key,
    new_salt,
)
from .responses import JSON
from .settings import Settings

__all__ = ["LogUnavailable", "Receipts", "receipts", "router"]

KEY_FILE = "receipt-key.pem"
LOG_FILE = "receipts.sqlite3"

router = APIRouter()


class Receipts:
    """The signer and the log of one worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._opened: tuple[Signer, ReceiptLog] | None = None
        self._lock = threading.Lock()

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir or default_state_dir()

    def _open(self) -> tuple[Signer, ReceiptLog]:
        with self._lock:
            if self._opened is None:
                key = self.settings.signing_key
                try:
                    if key is None:
                        key = self.state_dir / KEY_FILE
                        make_key(key)
                    signer = load_signer(key)
                    log = open_log(self.settings.database, self.state_dir / LOG_FILE, self.settings.keep_days)
                    log.add_key(signer.jwk)
                except (OSError, LlrError) as error:
                    raise LogUnavailable(str(error)) from None
                self._opened = (signer, log)
            return self._opened

    @property
    def log(self) -> ReceiptLog:
        return self._open()[1]

    def issue(self, decision: Decision, patient: Patient) -> str:
        """The receipt of `decision`, made from `patient`'s answers, signed and appended."""
        signer, log = self._open()
        salt = new_salt()  # kept in the log only: the receipt alone confirms no guess of the answers
        answers = answers_hash(patient, salt)
        return log.append(lambda prev: signer.sign(claims_of(decision, answers, prev)), salt)

    def reused(self, given: list[str], decision: Decision, patient: Patient) -> str | None:
        """The one of `given` (receipts a client sent back) that this service issued for
        `decision` made from `patient`'s answers: held in the log (its hash covers its signature:
        only receipts this service signed and appended are there), its claims what deciding
        again gives. None if no such one: then a new receipt is issued."""
        log = self.log
        for text in given:
            try:
                receipt = Receipt.read(text)
            except ReceiptError:
                continue
            kept = log.find(receipt.hash) if receipt.claims["policy"] == decision.policy.id else None
            if kept is not None and not differences(
                receipt.claims, decision, answers_hash(patient, kept.salt)
            ):
                return receipt.text
        return None

    def issued(self, decision: Decision, patient: Patient, said: dict[str, Any]) -> dict[str, Any]:
        """`said` (the decision as JSON) with its receipt."""
        return {**said, "receipt": self.issue(decision, patient)}


def receipts(request: Request) -> Receipts:
    return request.app.state.receipts  # type: ignore[no-any-return]


@router.get("/.well-known/jwks.json", summary="The public keys of the service's decision receipts")
def jwks(request: Request) -> JSON:
    return JSON(receipts(request).log.jwks(), headers={"Cache-Control": "max-age=300"})


@router.get(
    "/api/v1/activity",
    summary="Decisions counted by month, policy, edition, decision and robustness (no patient data)",
)
def activity(
    request: Request, format: str = Query("json", pattern="^(json|csv)$", description="json or csv")
) -> Response:
    rows = receipts(request).log.activity()
    if format == "csv":
        return PlainTextResponse(activity_csv(rows), media_type="text/csv; charset=utf-8")
    return JSON(rows)
