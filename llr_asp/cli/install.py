"""What this installation of llr-asp is: its version, and how to add an extra to it.

Both come from the package metadata pip wrote when it installed llr-asp: the version from
`pyproject.toml` as built, and where it was installed from (PEP 610's `direct_url.json`: a
clone, a wheel or a repository URL), so that a hint such as "serve needs the web extra" names a
command that works for this installation rather than an index that does not serve llr-asp.
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import sys
import urllib.parse
import urllib.request

DISTRIBUTION = "llr-asp"


def version() -> str:
    """The installed version (`0.1.0`), or `unknown` when run from a source tree not installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """What `llr-asp --version` prints: llr-asp's version and the versions it reasons with."""
    import clingo

    python = ".".join(map(str, sys.version_info[:3]))
    return f"llr-asp {version()} (clingo {clingo.__version__}, Python {python})"


def origin() -> dict[str, object] | None:
    """Where pip installed llr-asp from (`direct_url.json`), or None (an index, or no metadata)."""
    try:
        text = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def install_command(extra: str, where: dict[str, object] | None = None) -> str:
    """The pip command that installs llr-asp again from where it came, with `extra`.

    A clone installed with `pip install -e .` gives `pip install -e '/path/to/clone[web]'`; a
    wheel `pip install '/path/llr_asp-0.1.0-py3-none-any.whl[web]'`; a repository URL
    `pip install 'llr-asp[web] @ git+https://…@commit'`; anything else (an index) the plain name.
    """
    where = origin() if where is None else where
    url = str(where.get("url", "")) if where else ""
    vcs = where.get("vcs_info") if where else None
    if url and isinstance(vcs, dict):
        revision = vcs.get("requested_revision") or vcs.get("commit_id")
        at = f"@{revision}" if revision else ""
        kind = vcs.get("vcs", "git")
        return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}] @ {kind}+{url}{at}')}"
    if url.startswith("file://"):
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        info = where.get("dir_info") if where else None
        editable = isinstance(info, dict) and bool(info.get("editable"))
        return f"pip install {'-e ' if editable else ''}{shlex.quote(f'{path}[{extra}]')}"
    if url:
        return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}] @ {url}')}"
    return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"
