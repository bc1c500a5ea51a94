"""Benchmark for the issue "Conformance with the clinical systems that will call us" (not a
test: machines are shared and noisy). Every request goes to 127.0.0.1 only, bounded in count.

`llr-asp serve --workers 1`, with the rules and an order code for hip resurfacing, CDS Hooks
tokens checked (an ES384 key of its own, used token ids in a temporary state directory):

1. A CDS Hooks call: an order-sign call shaped as Da Vinci CRD's example, the Patient and the
   answers of the bundled examples in turn as prefetch, a fresh token each (its signing is not
   timed): p50 and p99. The specification asks a service to answer "on the order of 500 ms".
2. A $next-question call: the adaptive form of hip resurfacing (derived from its adaptive
   Questionnaire, hip-resurfacing-adaptive) started as DTR's example is,
   then driven to completion from the bundled examples in turn, every call timed (the first
   question included): p50 and p99. DTR asks for under 1 s (5 s for the first).

Run: python benchmarks/bench_interop.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from bench_serve import Server
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from artefacts import (  # noqa: E402
    HIP,
    adaptive_start,
    answer_items,
    answered,
    order_sign,
    patient_resource,
    searchset,
    service_request,
)

from llr_asp.core.ruleset import default_rules_dir  # noqa: E402

ISSUER = "https://ehr.example"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.json"))


def configured(folder: Path) -> tuple[list[str], ec.EllipticCurvePrivateKey]:
    """The serve options for rules with a hip order code and an EHR's key; the key."""
    shutil.copytree(default_rules_dir(), folder / "rules")
    with (folder / "rules" / "llr_icb.lp").open("a") as extra:
        extra.write(
            f'procedure("hip-resurfacing", "{HIP["system"]}", "{HIP["code"]}", "{HIP["display"]}").\n'
        )
    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES384"}]}))
    options = [
        "--rules",
        str(folder / "rules"),
        "--cds-issuer",
        ISSUER,
        "--cds-jwks",
        str(folder / "jwks.json"),
    ]
    return [*options, "--state-dir", str(folder / "state")], key


def timed(
    connection: http.client.HTTPConnection, path: str, body: dict[str, object], headers: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    data = json.dumps(body).encode()
    start = time.perf_counter()
    connection.request("POST", path, data, {"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"{path}: status {response.status}: {answer[:200]!r}")
    return elapsed, json.loads(answer)


def report(name: str, times: list[float], target: str) -> None:
    times.sort()
    p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    worst = times[-1] * 1e3
    print(f"{name}: {len(times)} calls, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {worst:.1f} ms")
    print(f"    target: {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the bundled examples")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        options, key = configured(Path(directory))
        server = Server(1, *options)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            base = f"http://127.0.0.1:{server.port}"
            hooks, questions, first = [], [], []
            for round_ in range(arguments.rounds + 1):
                for example in EXAMPLES:
                    now = int(time.time())
                    claims = {
                        "iss": ISSUER,
                        "aud": f"{base}/cds-services/hip-resurfacing-order-sign",
                        "iat": now,
                        "exp": now + 300,
                        "jti": str(uuid.uuid4()),
                    }
                    token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1"})
                    answers = {
                        "resourceType": "QuestionnaireResponse",
                        "status": "completed",
                        "subject": {"reference": "Patient/123"},
                        "item": answer_items(example),
                    }
                    call = order_sign(
                        [service_request("2468", HIP)],
                        {
                            "patient": patient_resource("123"),
                            "answers": searchset(answers),
                            "adaptiveAnswers": None,
                        },
                    )
                    took, _ = timed(
                        connection,
                        "/cds-services/hip-resurfacing-order-sign",
                        call,
                        {"Authorization": f"Bearer {token}"},
                    )
                    response = adaptive_start("urn:llr-asp:questionnaire:hip-resurfacing-adaptive")
                    spent = []
                    while True:
                        elapsed, response = timed(
                            connection, "/fhir/Questionnaire/$next-question", response, {}
                        )
                        spent.append(elapsed)
                        if response["status"] == "completed":
                            break
                        response = answered(response, example)
                    if round_:  # the first pass warms up
                        hooks.append(took)
                        first.append(spent[0])
                        questions += spent
        finally:
            server.stop()
    print("llr-asp serve, 1 worker, loopback keep-alive, tokens checked:")
    report("  CDS Hooks order-sign call (one card)", hooks, "the specification: ~500 ms")
    report("  $next-question, every call", questions, "DTR: < 1 s")
    report("  $next-question, the first call of a form", first, "DTR: < 5 s")


if __name__ == "__main__":
    main()
