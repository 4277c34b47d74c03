import os
import sys
from typing import List

import pytest

# The helpers (_ns, _oracle, _scenes) are plain modules beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

import _pace  # a helper beside the tests, importable from here on


def pytest_report_header() -> List[str]:
    return [_pace.describe()]


@pytest.fixture(scope="session", autouse=True)
def machine_pace() -> _pace.Pace:
    """The machine's pace, measured once in pytest's own process, before any test forks (a
    forked test inherits it): the deadlines of every test derive from it (tests/_pace.py)."""
    return _pace.pace()
