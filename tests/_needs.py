"""Skips for tests of a kernel feature this kernel lacks, asked of the kernel (the probe of
mountprobe.capabilities()), never read from its version: stable kernels carry backports. The
reason names the feature, the mainline version that brought it, this kernel's release and
what the probe saw.

Only for tests of the feature itself (its binding, its strategy by name): a test of an answer
asserts the fallback's answer on a kernel without the feature instead of skipping."""

from __future__ import annotations

import os
from typing import Any, Callable, List, Tuple

import pytest

from mountprobe import chain, probe


def _skip(feature: str, version: str, seen: str) -> None:
    pytest.skip(f"needs {feature} (Linux {version}); this is {os.uname().release}: {seen}")


def unique_ids() -> None:
    """statx(STATX_MNT_ID_UNIQUE): 64-bit mount ids that are never reused (6.8)."""
    caps = probe.capabilities()
    if not caps.statx_unique_id:
        _skip("unique mount ids from statx (STATX_MNT_ID_UNIQUE)", "6.8", caps.statx.detail)


def statmount() -> None:
    """listmount(2) and statmount(2) (6.8)."""
    caps = probe.capabilities()
    for iface in (caps.listmount, caps.statmount):
        if not iface.usable:
            _skip("listmount and statmount", "6.8", f"{iface.name} {iface.status}, {iface.detail}")
    if not caps.statx_unique_id:  # statmount takes unique ids only
        _skip("unique mount ids to ask statmount about", "6.8", caps.statx.detail)


def statmount_records() -> None:
    """statmount replies with every field of a mountinfo line, told apart from "empty" by
    supported_mask (6.15)."""
    statmount()
    caps = probe.capabilities()
    if not caps.statmount_records:
        _skip("statmount records (supported_mask)", "6.15", caps.statmount.detail)


def handle_fid() -> None:
    """name_to_handle_at(AT_HANDLE_FID): handles on filesystems without export ops (6.5)."""
    caps = probe.capabilities()
    if not caps.handle_fid:
        _skip("name_to_handle_at with AT_HANDLE_FID", "6.5", caps.name_to_handle_at.detail)


def offered(question: str) -> List[Tuple[str, Callable[..., Any]]]:
    """The strategies of ``question``'s chain that this kernel offers, to call one by one:
    the statmount ones need unique ids from statx and statmount records (6.15); before that
    mountprobe answers from mountinfo, and so do these tests. The others are always offered
    (what blocks them is simulated in their own tests). On a kernel with every feature this
    is the whole chain."""
    caps = probe.capabilities()
    with_statmount = caps.statx_unique_id and caps.statmount_records
    return [(name, fn) for name, fn in chain.strategies(question) if name != "statmount" or with_statmount]
