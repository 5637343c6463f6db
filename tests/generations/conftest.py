"""Reuses the conformance suite's harness (tests/conformance/ohconf.py: options, launcher, the Runtime client
and its fixtures) for sandboxd's own per-generation text tests.

The suite is a verbatim copy that is never edited (tests/conformance/README.md); its
directory comes from $CONFORMANCE (scripts/test exports it) or tests/conformance."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
CONFORMANCE = os.path.abspath(
    os.environ.get('CONFORMANCE')
    or os.path.join(_HERE, '..', 'conformance'))
if not os.path.isfile(os.path.join(CONFORMANCE, 'ohconf.py')):
    raise RuntimeError(f'conformance harness not found in {CONFORMANCE}; set CONFORMANCE')
sys.path.insert(0, CONFORMANCE)

from ohconf import *  # noqa: E402,F401,F403  (hooks and fixtures)
from ohconf import pytest_addoption, pytest_configure  # noqa: E402,F401
