"""Decision receipts (DESIGN §6): a compact JWS (RFC 7515) signed with EdDSA (Ed25519), whose
claims say what was decided under which rules, and hold no patient data.

Claims: `iat`, a receipt id `jti`, the edition (`policy`, `family`: the policy id while editions
do not exist, `rules`: the rule set's sha256), `decision`, `robust`, `possible`, `readings` (the
subset-minimal sets of contested readings under which the decision would differ, as
`contested[].readings`), `conflicts` (the fields whose sources disagreed: names, never values),
`answers` (the HMAC-SHA256 of the answers in canonical JSON, RFC 8785, keyed with a random
salt of the receipt's own that the receipt does not carry and the log keeps: the answers come
from few values, and a plain hash would let whoever holds a receipt test guesses of them) and
`prev` (the previous receipt's hash in the service's log, None for a receipt signed outside one).

"The answers" are the fields a record answered, with their values (null for an answer "not
known"), as a nested patient record without its `id`, `policy` or `meta`: the same record, a
QuestionnaireResponse of it or the page's form all hash alike, and a receipt never names the
patient. The JWS is written here by hand (three base64url parts) around `cryptography`'s
Ed25519: the payload is the claims' canonical JSON, so a receipt's bytes and its hash depend on
its claims alone, and verification accepts exactly one algorithm (alg EdDSA, a listed kid), so
no token can choose how it is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.decision import Decision
from ..core.errors import LlrError, UsageError, printable
from ..core.patient import Patient, nested

ALG = "EdDSA"
TYPE = "llr-asp-receipt+jwt"
"""The JWS `typ` (RFC 8725 §3.11: explicit typing): a receipt is never taken for another JWT."""
CLAIMS = (
    "iat",
    "jti",
    "policy",
    "family",
    "rules",
    "decision",
    "robust",
    "possible",
    "readings",
    "conflicts",
    "answers",
    "prev",
)
"""Every claim a receipt holds, and no other."""
MAX_RECEIPT = 8192
"""A receipt is some 700 characters; anything longer is not one."""


class ReceiptError(LlrError):
    """A receipt, a key or a JWKS that cannot be read: one line saying what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(printable(message))


# -- RFC 8785: the JSON Canonicalization Scheme ------------------------------------------------


def canonical(value: Any) -> str:
    """`value` (JSON data: None, bool, int, float, str, lists and mappings with string keys) in
    canonical JSON (RFC 8785): no whitespace, object keys sorted by their UTF-16 code units,
    strings escaped as ECMAScript's JSON.stringify escapes them, numbers as ECMAScript writes a
    double. A NaN, an infinity, a lone surrogate or an integer no double holds is a ValueError
    (I-JSON, RFC 7493), anything else a TypeError."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Callable[[str], object]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(_string(value))
    elif isinstance(value, (int, float)):
        out(number(value))
    elif isinstance(value, Mapping):
        out("{")
        for n, key in enumerate(sorted(value, key=_utf16)):
            if n:
                out(",")
            out(_string(key))
            out(":")
            _write(value[key], out)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _write(item, out)
        out("]")
    else:
        raise TypeError(f"not JSON data: {type(value).__name__}")


def _utf16(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError(f"an object key must be a string, not {type(key).__name__}")
    return key.encode("utf-16-be", "surrogatepass")  # big-endian bytes sort as the code units do


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


_PLAIN = re.compile('[^"\\\\\x00-\x1f\ud800-\udfff]*')
"""A string with nothing to escape and no lone surrogate: canonical JSON writes it as it is."""


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text):  # most strings: 2.4 -> 0.3 µs (a receipt writes about 50)
        return f'"{text}"'
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            raise ValueError("a lone surrogate has no canonical JSON (RFC 8785 §3.2.2.2)")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def number(value: int | float) -> str:
    """A number as ECMAScript's Number.prototype.toString writes the double it is (RFC 8785
    §3.2.2.3): the shortest digits that read back as it (Python's repr finds them), placed as
    ECMAScript places them: plainly from 1e-6 up to 1e21, else with an exponent."""
    if isinstance(value, int):
        if float(value) != value:
            raise ValueError(f"the integer {value} is no IEEE 754 double (I-JSON)")
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} has no JSON form")
    if value == 0:
        return "0"  # -0 too
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    written = whole + fraction
    digits = written.lstrip("0")
    # value = 0.<digits> x 10^n
    n = len(whole) + int(exponent or "0") - (len(written) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{sign}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{sign}0.{'0' * -n}{digits}"
    e = n - 1
    shown = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{shown}e{'+' if e >= 0 else '-'}{abs(e)}"


# -- the claims -------------------------------------------------------------------------------


def answers_of(patient: Patient) -> dict[str, Any]:
    """The answers a receipt's hash covers: every field the record answered, with its value
    (None: not known), nested as in a patient record; no id, policy or meta."""
    fields = sorted(patient.answered | set(patient.values))
    return nested({field: patient.values.get(field) for field in fields})


SALT_BYTES = 16
"""A receipt's salt: 128 random bits, so that no guess of the answers can be tested without it."""


def new_salt() -> str:
    """A fresh salt for one receipt (hex)."""
    return secrets.token_hex(SALT_BYTES)


def answers_hash(patient: Patient, salt: str | None = None) -> str:
    """The hash (hex) of the patient's answers in canonical JSON that a receipt's `answers`
    holds: HMAC-SHA256 keyed with the receipt's `salt` (hex), which the receipt does not carry
    (the log keeps it), so the receipt alone cannot confirm a guess of the answers; the plain
    SHA-256 for None (receipts made before salts, whose log row has none)."""
    data = canonical(answers_of(patient)).encode("utf-8")
    if salt is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(salt_bytes(salt), data, hashlib.sha256).hexdigest()


def salt_bytes(salt: str) -> bytes:
    """A salt given as hex (`--salt`, a log row): its bytes; a ReceiptError if it is not one."""
    try:
        key = bytes.fromhex(salt)
    except ValueError:
        key = b""
    if len(key) != SALT_BYTES:
        raise ReceiptError(f"salt {salt[:40]!r}: not a receipt's salt ({SALT_BYTES * 2} hex digits)")
    return key


def claims_of(
    decision: Decision, answers: str, prev: str | None, jti: str | None = None, iat: int | None = None
) -> dict[str, Any]:
    """A receipt's claims for `decision`, made from answers hashing to `answers`."""
    return {
        "iat": int(time.time()) if iat is None else iat,
        "jti": jti or secrets.token_hex(16),
        "policy": decision.policy.id,
        "family": decision.policy.family,  # the id users name (DESIGN §5 Editions)
        "rules": decision.rules,
        "decision": decision.decision,
        "robust": decision.robust,
        "possible": list(decision.possible),
        "readings": [list(c.readings) for c in decision.contested],
        "conflicts": [c.field for c in decision.conflicts],
        "answers": answers,
        "prev": prev,
    }


def differences(claims: Mapping[str, Any], decision: Decision, answers: str) -> list[str]:
    """What differs between a receipt's claims and `decision` re-made from answers hashing to
    `answers`, one line each; none when all agree."""
    again = claims_of(decision, answers, claims.get("prev"), claims.get("jti"), claims.get("iat"))
    said = {
        "answers": "the answers' hash (these are not the answers it was made from)",
        "rules": "the rule set's sha256",
        "policy": "the policy",
        "family": "the policy family",
    }
    return [
        f"{said.get(name, name)}: the receipt says {_shown(claims.get(name))}, "
        f"re-deciding gives {_shown(again[name])}"
        for name in CLAIMS
        if claims.get(name) != again[name]
    ]


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# -- JWS ---------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not _B64_TEXT.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_TEXT = re.compile("[A-Za-z0-9_-]+")
"""Base64url text, at least a character (a receipt's signature: a set test per character took
0.1 ms a receipt)."""


def receipt_hash(receipt: str) -> str:
    """A receipt's hash, as the next receipt's `prev` names it: the SHA-256 (hex) of the JWS."""
    return hashlib.sha256(receipt.encode("ascii")).hexdigest()


class Signer:
    """Signs receipts with one Ed25519 private key, named by its RFC 7638 thumbprint (`kid`)."""

    def __init__(self, private: Any) -> None:
        self._key = private
        self.jwk = public_jwk(private.public_key())
        self.kid: str = self.jwk["kid"]
        self._header = b64(canonical({"alg": ALG, "kid": self.kid, "typ": TYPE}).encode())

    def sign(self, claims: Mapping[str, Any]) -> str:
        signing_input = f"{self._header}.{b64(canonical(claims).encode('utf-8'))}"
        return f"{signing_input}.{b64(self._key.sign(signing_input.encode('ascii')))}"


def public_jwk(public: Any) -> dict[str, str]:
    """The public key as a JWK (RFC 8037: kty OKP, crv Ed25519), its kid the RFC 7638 thumbprint."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64(raw)}
    kid = b64(hashlib.sha256(canonical(members).encode()).digest())
    return {**members, "kid": kid, "alg": ALG, "use": "sig"}


@dataclass(frozen=True)
class Receipt:
    """A receipt read apart, not yet verified."""

    text: str
    kid: str
    claims: dict[str, Any]

    @classmethod
    def read(cls, text: str) -> Receipt:
        """The receipt `text` (a compact JWS); a ReceiptError naming what is wrong."""
        text = text.strip()
        if len(text) > MAX_RECEIPT or text.count(".") != 2:
            raise ReceiptError(
                "not a receipt: a receipt is a compact JWS, three base64url parts joined by dots"
            )
        head, body, signature = text.split(".")
        try:
            header = json.loads(unb64(head))
            claims = json.loads(unb64(body))
            unb64(signature)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ReceiptError("not a receipt: its parts are not base64url JSON") from None
        if not isinstance(header, dict) or header.get("alg") != ALG or header.get("typ") != TYPE:
            raise ReceiptError(f"not a receipt: its header must say alg {ALG} and typ {TYPE}")
        if not isinstance(header.get("kid"), str):
            raise ReceiptError("not a receipt: its header names no kid")
        if not isinstance(claims, dict) or set(claims) != set(CLAIMS):
            raise ReceiptError(f"not a receipt: its claims must be exactly {', '.join(CLAIMS)}")
        return cls(text, header["kid"], claims)

    @property
    def hash(self) -> str:
        return receipt_hash(self.text)

    def signed_by(self, keys: Mapping[str, Any]) -> bool:
        """Whether one of `keys` (Ed25519 public keys by kid) signed this receipt."""
        from cryptography.exceptions import InvalidSignature

        key = keys.get(self.kid)
        if key is None:
            return False
        head, body, signature = self.text.split(".")
        try:
            key.verify(unb64(signature), f"{head}.{body}".encode("ascii"))
        except (InvalidSignature, ValueError):
            return False
        return True


# -- keys --------------------------------------------------------------------------------------


def load_signer(path: Path) -> Signer:
    """The signer of the PEM Ed25519 private key in `path` (`--signing-key`, `--receipt`): a
    file only its owner may read."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        status = path.stat()
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(
            f"{path}: cannot be read ({error.strerror}); give a PEM Ed25519 private key"
        ) from None
    if os.name == "posix" and status.st_mode & 0o077:
        raise UsageError(f"{path}: others may read this private key; chmod 600 {path}")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UsageError(
            f"{path}: not an unencrypted PEM private key; make one with `llr-asp receipt key {path}`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: not an Ed25519 key; receipts are signed with Ed25519 (EdDSA)")
    return Signer(key)


def make_key(path: Path) -> bool:
    """Make an Ed25519 private key in `path` (PEM, mode 600) unless one is there: True if made.
    Safe when several processes start at once: the key is written aside and linked into place,
    so a process never reads half a key, and only one key is ever made."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(aside, path)  # fails if another process made it first: theirs is kept
        except FileExistsError:
            return False
        return True
    finally:
        aside.unlink(missing_ok=True)


def public_keys(jwks: Any, source: str) -> dict[str, Any]:
    """The Ed25519 public keys of a JWKS document, by kid; keys of other kinds are passed over."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    listed = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(listed, list):
        raise ReceiptError(f'{source}: not a JWKS (an object with a list "keys")')
    keys = {}
    for jwk in listed:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            key = Ed25519PublicKey.from_public_bytes(unb64(str(jwk.get("x", ""))))
        except ValueError:
            raise ReceiptError(f"{source}: key {jwk.get('kid')!r}: x is not an Ed25519 public key") from None
        keys[public_jwk(key)["kid"]] = key  # by its thumbprint, whatever kid the file gives it
    return keys


JWKS_SECONDS = 5.0
"""The longest `receipt verify --jwks URL` waits for the service's keys, connecting and reading."""
MAX_JWKS = 1 << 20
"""A JWKS is a few hundred bytes a key; an answer longer than this is refused unread."""


def fetch_jwks(url: str) -> dict[str, Any]:
    """The Ed25519 public keys at `url` (http or https: the service's /.well-known/jwks.json),
    by kid: within JWKS_SECONDS, at most MAX_JWKS bytes, no redirect followed, TLS verified."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ReceiptError(
            f"--jwks {url}: give a file or an http(s) URL of the service's /.well-known/jwks.json"
        )

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx is then an HTTPError: the keys come from the URL given, only

    opener = urllib.request.build_opener(NoRedirects)
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "Accept-Encoding": "identity"}
    )
    deadline = time.monotonic() + JWKS_SECONDS
    try:
        with opener.open(request, timeout=JWKS_SECONDS) as answer:
            data = b""
            while len(data) <= MAX_JWKS:
                chunk = answer.read(65536)
                if not chunk:
                    break
                data += chunk
                if time.monotonic() > deadline:
                    raise TimeoutError
    except urllib.error.HTTPError as error:
        raise ReceiptError(
            f"--jwks {url}: the server answered {error.code}; give the service's JWKS URL"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(error, TimeoutError) or isinstance(reason, TimeoutError):
            reason = f"no answer within {JWKS_SECONDS:g} s"
        raise ReceiptError(f"--jwks {url}: cannot be fetched ({reason})") from None
    if len(data) > MAX_JWKS:
        raise ReceiptError(f"--jwks {url}: the answer is over {MAX_JWKS >> 10} KiB; a JWKS is not that long")
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ReceiptError(f"--jwks {url}: not JSON; give the service's /.well-known/jwks.json") from None
    return public_keys(document, f"--jwks {url}")


def read_jwks(path: Path) -> dict[str, Any]:
    """The Ed25519 public keys of the JWKS file `path`, by kid."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReceiptError(f"--jwks {path}: cannot be read ({error.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise ReceiptError(
            f"--jwks {path}: not a JSON file; give the service's /.well-known/jwks.json"
        ) from None
    return public_keys(document, f"--jwks {path}")
