"""What start-up imports (issue 17): the commands and ``import mountprobe`` keep the modules
that dominate an interpreter's start-up off their import path (typing and the re it pulls
in, argparse, json, threading, collections), so a command costs little more than
``python -c pass`` (scripts/bench_startup.py measures it). Each command runs with
``-X importtime`` in a fresh interpreter, through the launcher that is installed (bin/mountprobe),
and what it imports beyond the interpreter's own start-up is checked."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Set

import pytest

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = {"typing", "re", "argparse", "json", "threading", "collections"}

# What a command may import of HEAVY because it truly needs it: nothing today. The records
# it builds are declared on _tuples.Record, which needs neither typing nor collections.
NEEDED: Dict[str, Set[str]] = {"is-mountpoint": set(), "find": set(), "list": set()}
COMMANDS = [["is-mountpoint", "-q", "/proc"], ["find", "/proc"], ["list"]]


def _launcher() -> str:
    """bin/mountprobe of this checkout, else the one installed beside this interpreter."""
    for path in (os.path.join(ROOT, "bin", "mountprobe"), os.path.join(os.path.dirname(sys.executable), "mountprobe")):
        if os.path.isfile(path):
            return path
    pytest.skip("no mountprobe launcher here (neither bin/mountprobe nor one beside the interpreter)")


def _imported(*args: str) -> Set[str]:
    """The modules a fresh interpreter running ``args`` imports, from ``-X importtime``."""
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, timeout=120, env=env, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = done.stderr.decode(errors="replace").splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:") and "|" in line}


def _added(*args: str) -> Set[str]:
    """The modules of ``args`` beyond those of the interpreter's own start-up (site, and
    whatever its .pth files import): those cost the command nothing."""
    return _imported(*args) - _imported("-c", "pass")


@pytest.mark.parametrize("argv", COMMANDS, ids=[argv[0] for argv in COMMANDS])
def test_a_command_imports_no_heavy_module_it_does_not_need(argv: List[str]) -> None:
    heavy = _added(_launcher(), *argv) & HEAVY
    assert heavy <= NEEDED[argv[0]], f"mountprobe {' '.join(argv)} imports {sorted(heavy - NEEDED[argv[0]])}"


def test_import_mountprobe_imports_no_heavy_module() -> None:
    assert _added("-c", "import mountprobe") & HEAVY == set()
