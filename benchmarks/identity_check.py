"""Identity check for speed work (issue 39): every output of this checkout against a base commit's.

Not a test of the suite (it takes minutes): run it before committing a change that should not
change any output. It clones the repository at `--base` (default: the commit where this branch
left `main`) into a temporary directory, then decides the same cases with each code base, each
in a subprocess that imports its own `llr_asp` (PYTHONPATH), and compares the outputs byte for
byte:

- every bundled example (examples/*.json): `explain --format json` as whole processes, and in
  process, the API and batch under the record's own policy and under each policy;
- `--count` random patients per policy family (fixed `--seed`; values anywhere in each field's
  domain as the rules declare it, numbers whole and fractional around every threshold, about 15%
  of fields absent and 5% null): explain's JSON, batch's JSON Lines (`--policy FAMILY`), the
  API's POST /api/v1/explain?policy=FAMILY; the first `--next` of them also POST /api/v1/next;
  the first `--every` also under every policy (no policy named) on each surface;
- the same for `--edition-count` patients on a copy of the rules with a second hip edition
  (tests/test_editions.py's recipe), dated on either side of its first day.

Only per-run fields are left out of the comparison: each API receipt is compared by its claims
less its id, time, answers' hash (salted) and link to the previous receipt (`PER_RUN`), which
differ by design. And the fields a batch line gained on purpose since the base (`ADDED`) are
left out of batch lines on both sides, so that the rest is still compared byte for byte: name
the commit that added them there, and empty it once the base has them.

Run: python benchmarks/identity_check.py [--base REF] [--count 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DATES = ["2026-05-01", "2027-03-31", "2027-04-01", "2027-05-01"]

ADDED = ("urgent",)
"""Fields a batch line gained on purpose, left out of the comparison of batch lines: `urgent`
(review 17, F7: the urgent route, explain's `urgent`, which tests/test_batch_urgent.py checks
equals explain's for the same record)."""


def edition_rules(folder: Path, base_rules: Path) -> Path:
    """The shipped rules with a second hip edition (as tests/test_editions.py makes it)."""
    rules = folder / "rules"
    shutil.copytree(base_rules, rules, ignore=shutil.ignore_patterns("check-baseline.json"))
    text = (rules / "hip_resurfacing.lp").read_text().replace('"hip-resurfacing"', '"hip-resurfacing-2027"')
    text += """
edition("hip-resurfacing-2027", "hip-resurfacing", "2027-04-01").
conservative_period("hip-resurfacing-2027", 3,
    "3 months of documented conservative measures have failed",
    "Fully engaged with conservative measures for at least 3 months").
"""
    (rules / "hip_resurfacing_2027.lp").write_text(text)
    return rules


def random_patients(fields: dict[str, Any], count: int, rng: random.Random, prefix: str) -> list[str]:
    """`count` patient documents (JSON text) with random values over each field's declared domain."""
    thresholds: dict[str, list[int]] = {}
    out = []
    for n in range(count):
        flat: dict[str, Any] = {}
        for name, field in fields.items():
            roll = rng.random()
            if roll < 0.15:
                continue
            if roll < 0.20:
                flat[name] = None
                continue
            if field["type"] == "bool":
                flat[name] = rng.random() < 0.6
            elif field["values"]:
                flat[name] = rng.choice(field["values"])
            elif field["type"] == "date":
                flat[name] = rng.choice(DATES)
            else:
                lo = field["minimum"] if field["minimum"] is not None else 0
                hi = field["maximum"] if field["maximum"] is not None else 36
                hi = min(hi, 36)
                near = thresholds.setdefault(name, list(range(lo, hi + 1)))
                whole = rng.choice(near)
                if field["type"] == "integer" or rng.random() < 0.6:
                    flat[name] = whole
                else:
                    flat[name] = round(min(hi, whole + rng.random()), 2)
        document: dict[str, Any] = {"id": f"{prefix}-{n}"}
        for path, value in flat.items():
            node = document
            *parents, last = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        out.append(json.dumps(document))
    return out


# ---------------------------------------------------------------- the worker (one code base)


PER_RUN = ("iat", "jti", "prev", "answers")
"""A receipt's claims that differ from run to run: when it was issued, its id, the hash of
the receipt before it in the log, and the answers' hash (keyed with a salt drawn for each
receipt since ae33b57: without it here, every API answer differed from the base's)."""


def _strip(value: Any) -> Any:
    """An API answer with each receipt replaced by its claims less the per-run ones (the
    signature differs with them): the answers' hash, the edition, the decision stay compared."""
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, dict):
        return {k: _claims(v) if k == "receipt" else v for k, v in value.items()}
    return value


def _claims(receipt: str) -> dict[str, Any]:
    payload = receipt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return {k: v for k, v in claims.items() if k not in PER_RUN}


def worker(cases_file: Path, out_file: Path) -> None:
    import llr_asp
    from llr_asp import Reasoner  # the code base on PYTHONPATH
    from llr_asp.cli.app import print_json
    from llr_asp.core.decision import per_policy
    from llr_asp.core.documents import validate
    from llr_asp.core.patient import parse
    from llr_asp.engines.batch import iterate_decisions
    from llr_asp.web.app import create_app
    from llr_asp.web.settings import Settings

    print(f"identity check: deciding with {Path(llr_asp.__file__).parent}", file=sys.stderr)
    cases = json.loads(cases_file.read_text())
    written = out_file.open("w")

    class Digests:
        """Each output as its key, its sha256 and its first 300 characters (a decision's JSON is
        about 17 KB: 90,000 of them in full would take 1.5 GB a side)."""

        def write(self, line: str) -> None:
            key, text = line.rstrip("\n").split("\t", 1)
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            written.write(f"{key}\t{digest}\t{json.dumps(text[:300])}\n")

        def close(self) -> None:
            written.close()

    out = Digests()

    async def run_api(app: Any, jobs: list[tuple[str, str, str]]) -> list[str]:
        answers = []
        async with app.router.lifespan_context(app):
            for route, query, body in jobs:
                status, data = await _asgi(app, route, query, body.encode())
                answers.append(f"{status} {json.dumps(_strip(json.loads(data)), ensure_ascii=False)}")
        return answers

    for suite in cases["suites"]:
        rules = Path(suite["rules"]) if suite["rules"] else None
        reasoner = Reasoner.load(rules)
        state = tempfile.mkdtemp()
        app = create_app(rules, Settings(state_dir=Path(state)))
        name = suite["name"]
        for selection, documents, surfaces in suite["runs"]:
            tag = f"{name}|{selection}"
            if "explain" in surfaces:
                for n, text in enumerate(documents):
                    record = validate(parse(text, "case"), reasoner.rules, "case")
                    buffer = io.StringIO()
                    with contextlib.redirect_stdout(buffer):
                        decisions = reasoner.decide(record, reasoner.chosen(record, selection, None))
                        print_json(per_policy([d.to_json() for d in decisions]))
                    out.write(f"explain|{tag}|{n}\t{json.dumps(buffer.getvalue())}\n")
            if "batch" in surfaces:
                for result in iterate_decisions(documents, policy=selection, rules=rules):
                    said = {k: v for k, v in result.to_json().items() if k not in ADDED}
                    line = json.dumps(said, ensure_ascii=False)
                    out.write(f"batch|{tag}|{result.line}\t{line}\n")
            for route in ("explain", "next"):
                if f"api-{route}" not in surfaces:
                    continue
                query = f"policy={selection}" if selection else ""
                jobs = [(f"/api/v1/{route}", query, text) for text in documents]
                for n, answer in enumerate(asyncio.run(run_api(app, jobs))):
                    out.write(f"api-{route}|{tag}|{n}\t{answer}\n")
        shutil.rmtree(state, ignore_errors=True)
    out.close()


async def _asgi(app: Any, path: str, query: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


# ---------------------------------------------------------------- the comparison


def clone(ref: str, into: Path) -> Path:
    base = into / "base"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(base)], check=True)
    subprocess.run(["git", "-C", str(base), "checkout", "--quiet", ref], check=True)
    return base


def run_worker(code: Path, cases: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(code), "LLR_ASP_RULES": ""}
    env.pop("LLR_ASP_RULES")
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker", str(cases), str(out)], env=env, cwd=code
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base", default=None, help="the git ref to compare with (default: where this branch left main)"
    )
    parser.add_argument("--count", type=int, default=10_000, help="random patients per policy family")
    parser.add_argument("--next", type=int, default=1_000, help="of those, how many also go to /api/v1/next")
    parser.add_argument("--every", type=int, default=1_000, help="of those, how many also under every policy")
    parser.add_argument(
        "--edition-count", type=int, default=2_000, help="random patients with two hip editions"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(*options.worker)
        return

    sys.path.insert(0, str(ROOT))
    from llr_asp.core.ruleset import default_rules_dir, load_rules

    started = time.perf_counter()
    if options.base is None:
        options.base = subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
        ).stdout.strip()
    rng = random.Random(options.seed)
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        base = clone(options.base, work)
        commit = subprocess.run(
            ["git", "-C", str(base), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        # this checkout as it is now (edits made while the check runs do not count)
        this = work / "this"
        shutil.copytree(
            ROOT,
            this,
            ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache"),
        )
        edited = edition_rules(work, default_rules_dir())
        examples = [p.read_text() for p in sorted((ROOT / "examples").glob("*.json"))]
        suites = []
        every = ["explain", "batch", "api-explain", "api-next"]
        for name, rules in (("bundled", None), ("editions", edited)):
            ruleset = load_rules(rules)
            fields = {
                path: {"type": f.type, "values": list(f.values), "minimum": f.minimum, "maximum": f.maximum}
                for path, f in ruleset.fields.items()
            }
            count = options.count if rules is None else options.edition_count
            runs: list[tuple[str | None, list[str], list[str]]] = []
            runs.append((None, examples, every))
            for family in ruleset.families:
                runs.append((family, examples, every))
            for family in ruleset.families:
                cohort = random_patients(fields, count, rng, f"{name}-{family}")
                runs.append((family, cohort, ["explain", "batch", "api-explain"]))
                runs.append((family, cohort[: options.next], ["api-next"]))
                runs.append((None, cohort[: options.every], ["explain", "batch", "api-explain"]))
            suites.append({"name": name, "rules": str(rules) if rules else None, "runs": runs})
        cases = work / "cases.json"
        cases.write_text(json.dumps({"suites": suites}))
        outputs = {"base": work / "base.out", "this": work / "this.out"}
        workers = [
            run_worker(base, cases, outputs["base"]),
            run_worker(this, cases, outputs["this"]),
        ]
        if any(w.wait() != 0 for w in workers):
            raise SystemExit("a worker failed")
        compared: dict[str, int] = {}
        differ = 0
        with outputs["base"].open() as before, outputs["this"].open() as after:
            for n, (old, new) in enumerate(zip(before, after, strict=True)):
                key = old.split("\t", 1)[0]
                surface = key.split("|", 1)[0]
                compared[surface] = compared.get(surface, 0) + 1
                if old != new:
                    differ += 1
                    if differ <= 5:
                        print(f"DIFFERS at output {n} ({key}):\n  base: {old[:600]}\n  this: {new[:600]}")
        digest = hashlib.sha256(outputs["this"].read_bytes()).hexdigest()[:16]
        # whole processes: `llr-asp explain EXAMPLE --format json`, each code base
        processes = 0
        for path in sorted((ROOT / "examples").glob("*.json")):
            said = []
            for code in (base, this):
                env = {**os.environ, "PYTHONPATH": str(code)}
                said.append(
                    subprocess.run(
                        [sys.executable, "-m", "llr_asp", "explain", str(path.name), "--format", "json"],
                        capture_output=True,
                        env=env,
                        cwd=code / "examples",
                    )
                )
            processes += 1
            if (said[0].returncode, said[0].stdout) != (said[1].returncode, said[1].stdout):
                differ += 1
                print(f"DIFFERS: llr-asp explain {path.name} --format json")
    total = sum(compared.values())
    print(
        f"identity check against {options.base} ({commit}), seed {options.seed}: {total:,} outputs compared "
        + ", ".join(f"{s} {c:,}" for s, c in sorted(compared.items()))
        + f"; {processes} whole `explain --format json` processes; {differ} differ "
        f"(sha256 of this side's outputs {digest}; {time.perf_counter() - started:.0f} s)"
        + (f"; batch lines compared without {', '.join(ADDED)} (ADDED)" if ADDED else "")
    )
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
