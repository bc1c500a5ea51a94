"""The `llr-asp` command: a thin shell over the library, split by who uses it.

`app` holds the application and how every command ends (errors, Ctrl-C, output that cannot be
written); `clinician` explain, whatif, next and ask; `cohort` batch and schema; `analyst`
policies, analyze, report, diff and check; `service` serve and fhir. Only this package prints and
exits. The console script is `llr_asp.cli:main`.
"""

# isort: off
# (the order commands are listed in `llr-asp -h`: each module registers its own)
from . import clinician, cohort, analyst, service, receipts  # noqa: F401
from .app import app, main

# isort: on
from .clinician import EVERY_POLICY

__all__ = ["EVERY_POLICY", "app", "main"]
