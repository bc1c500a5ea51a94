"""`llr-asp serve`: a page for clinicians and a JSON API, thin shells over the same core as the
CLI (the `web` extra: FastAPI, uvicorn, Jinja2, python-multipart). Nothing here is imported by
the other commands."""

from .app import create_app

__all__ = ["create_app"]
