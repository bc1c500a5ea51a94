"""The JSON response of every route: orjson where it can, the standard library where it cannot.

A decision with both trees is about 35 KB of JSON; orjson writes it in 0.02 ms, the standard
library in 0.29 ms, more than the HTTP handling of a request. orjson refuses what no patient
document should hold but one can (a lone surrogate from a `\\ud800` escape): such an answer is
written by the standard library with every non-ASCII character escaped, so it is valid UTF-8
and reads back as the same strings.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.responses import JSONResponse


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")
