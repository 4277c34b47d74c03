"""The ``mountprobe`` command: argument parsing and printing only; every answer comes from
``mountprobe.api``."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional

from . import __version__


def _doctor() -> int:
    from . import api, probe
    from .errors import MountprobeError

    caps = probe.capabilities()
    print("kernel interfaces:")
    for iface in (caps.statx, caps.openat2, caps.name_to_handle_at, caps.listmount, caps.statmount, caps.procfs):
        print(f"  {iface.name:<18} {iface.status:<10} {iface.detail}")
    print("questions (asked about /):")
    asks: Dict[str, Callable[[], object]] = {
        "is_mountpoint": lambda: api.is_mountpoint("/"),
        "is_mountpoint(bind=False)": lambda: api.is_mountpoint("/", bind=False),
        "mount_of": lambda: api.mount_of("/"),
        "mount_at": lambda: api.mount_at("/"),
        "mounts_under": lambda: api.mounts_under("/proc"),
        "list_mounts": lambda: api.list_mounts(),
    }
    failed = 0
    for question, ask in asks.items():
        try:
            ask()
        except (MountprobeError, OSError) as exc:
            print(f"  {question:<26} ERROR {exc}")
            failed = 1
            continue
        answer = api.last_answer()
        assert answer is not None
        print(f"  {question:<26} {answer.strategy}")
        for name, why in answer.declined:
            print(f"  {'':<26}   not {name}: {why}")
    return failed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mountprobe", description="Answers about Linux mounts from the kernel.")
    parser.add_argument("--version", action="version", version=f"mountprobe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    commands.add_parser("doctor", help="which kernel interfaces work here, and which strategy answers each question")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        return _doctor()
    return 1


if __name__ == "__main__":
    sys.exit(main())
