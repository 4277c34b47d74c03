"""What `pip install mountprobe` promises: psutil installed with it but imported only where
processes are listed, a version that matches the changelog, classifiers for every Python
the package supports, and the README's two fresh-machine commands (the second is the one
.ci/run runs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import mountprobe

pytestmark = pytest.mark.host_only  # asks no kernel: not run in the real-kernel guests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name: str) -> str:
    path = os.path.join(ROOT, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} of the checkout is not here (the unprivileged CI run copies tests/ and pyproject.toml)")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _project_list(pyproject: str, key: str) -> list[str]:
    block = re.search(rf"^{key} = \[(.*?)\]", pyproject, re.S | re.M)
    assert block is not None, key
    return re.findall(r'"([^"]+)"', block.group(1))


def test_psutil_is_a_dependency_and_the_namespaces_extra_stays_as_an_alias() -> None:
    pyproject = _read("pyproject.toml")
    assert any(d.startswith("psutil") for d in _project_list(pyproject, "dependencies"))
    assert any(d.startswith("psutil") for d in _project_list(pyproject, "namespaces"))


def test_the_core_and_the_new_modules_import_no_psutil() -> None:
    code = (
        "import sys, mountprobe, mountprobe.compat, mountprobe.aio\n"
        "mountprobe.is_mountpoint('/'); mountprobe.list_mounts(); mountprobe.compat.ismount('/')\n"
        "mountprobe.compat.find_mount_point('/proc/self'); mountprobe.compat.disk_partitions(all=True)\n"
        "assert 'psutil' not in sys.modules, 'psutil imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_classifiers_name_every_supported_python_and_beta() -> None:
    classifiers = _project_list(_read("pyproject.toml"), "classifiers")
    for minor in range(9, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Development Status :: 4 - Beta" in classifiers


def test_version_is_the_changelogs_newest() -> None:
    newest = re.search(r"^## (\d+\.\d+\.\d+)", _read("CHANGELOG.md"), re.M)
    assert newest is not None and newest.group(1) == mountprobe.__version__
    out = subprocess.run([sys.executable, "-m", "mountprobe", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["mountprobe", mountprobe.__version__]


def test_readme_keeps_the_two_fresh_machine_commands_and_ci_runs_the_second() -> None:
    readme = _read("README.md")
    blocks = re.findall(r"```sh\n(.*?)\n```", readme.split("## Example")[0], re.S)
    assert blocks == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install . && mountprobe doctor",
        "pip install '.[test]' && python -m pytest",
    ]
    assert blocks[1] in _read(".ci/run").splitlines()
