"""A sample signed JWT for calling llr-asp's CDS Hooks services, as an EHR would (for trying the
service with curl; a real EHR signs with its own key and publishes its JWKS).

    python scripts/cds_token.py --keys DIR                      # once: an ES384 key pair and DIR/jwks.json
    python scripts/cds_token.py --keys DIR --aud URL [--iss ISS]  # a token for one call to URL

The token lives five minutes and carries a fresh jti: the service refuses a token used twice.
The private key is written readable by its owner only; `keys/` is in .gitignore.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

KID = "llr-asp-sample"


def make_keys(directory: Path) -> None:
    """A key pair: the private key readable by its owner only (0600, whatever the umask), the
    public keys as a JWKS for `llr-asp serve --cds-jwks`."""
    directory.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP384R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(directory / "private.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # a file that was there keeps no wider mode
        out.write(pem)
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    (directory / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": KID, "alg": "ES384", "use": "sig"}]}, indent=2)
    )


def token(directory: Path, audience: str, issuer: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    key = (directory / "private.pem").read_bytes()
    return jwt.encode(claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=Path, required=True, help="folder of the key pair and jwks.json")
    parser.add_argument(
        "--aud", help="the exact URL the token is for, e.g. http://127.0.0.1:8000/cds-services"
    )
    parser.add_argument("--iss", default="https://ehr.example", help="the issuer (give it to --cds-issuer)")
    arguments = parser.parse_args()
    if not (arguments.keys / "private.pem").exists():
        make_keys(arguments.keys)
        print(f"keys written: {arguments.keys / 'private.pem'} and {arguments.keys / 'jwks.json'}")
    if arguments.aud:
        print(token(arguments.keys, arguments.aud, arguments.iss))


if __name__ == "__main__":
    main()
