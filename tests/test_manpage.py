"""The committed mountprobe(1) page is what scripts/make_manpage.py makes from the
command's help now: a changed option without a regenerated page fails here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

import mountprobe

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "make_manpage.py")
PAGE = os.path.join(ROOT, "docs", "mountprobe.1")


def _generator() -> object:
    if not (os.path.exists(SCRIPT) and os.path.exists(PAGE)):
        pytest.skip("scripts/ and docs/ of the checkout are not here (the unprivileged CI run copies tests/ only)")
    spec = importlib.util.spec_from_file_location("make_manpage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_man_page_equals_what_the_script_makes_from_the_help_now() -> None:
    generated = _generator().page()  # type: ignore[attr-defined]
    with open(PAGE, encoding="utf-8") as f:
        assert f.read() == generated, "docs/mountprobe.1 is stale: run python scripts/make_manpage.py"


def test_man_page_names_every_command_and_option_of_the_help() -> None:
    page = _generator().page()  # type: ignore[attr-defined]
    top = subprocess.run([sys.executable, "-m", "mountprobe", "--help"], cwd=ROOT, capture_output=True, text=True)
    commands = [line.split()[0] for line in top.stdout.split("commands:\n")[1].splitlines() if line.startswith("  ")]
    assert "is-mountpoint" in commands and "watch" in commands
    for command in commands:
        assert f".SS {command.replace('-', chr(92) + '-')}\n" in page
    assert f'"mountprobe {mountprobe.__version__}"' in page.splitlines()[1]
