import os
import signal
import sys
from typing import List

import pytest

# The helpers (_ns, _oracle, _scenes, _pace) are plain modules beside the tests.
sys.path.insert(0, os.path.dirname(__file__))

import _pace  # a helper beside the tests, importable from here on

# What the tests need of their process, whatever started pytest: the helpers wait for the
# children they fork, which an inherited ignored SIGCHLD would reap behind their back
# (ECHILD); and the commands' error output is the default one unless a test asks for the
# traceback, which a developer's exported MOUNTPROBE_TRACEBACK would otherwise turn on.
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
os.environ.pop("MOUNTPROBE_TRACEBACK", None)


def pytest_report_header() -> List[str]:
    return [_pace.describe()]


@pytest.fixture(scope="session", autouse=True)
def machine_pace() -> _pace.Pace:
    """The machine's pace, measured once in pytest's own process, before any test forks (a
    forked test inherits it): the deadlines of every test derive from it (tests/_pace.py)."""
    return _pace.pace()
