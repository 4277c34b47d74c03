"""libc's ``syscall(2)`` entry point and the per-architecture syscall numbers.

glibc has no wrappers for statmount, listmount or openat2 (and older glibc none for
statx), so every call goes through ``syscall()`` with explicit argument types:
a bare Python int would be passed as a 32-bit C ``int``.
"""

from __future__ import annotations

import ctypes
import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn, Optional

_MACHINE = os.uname().machine

# Numbers from 424 on are shared by every architecture (Linux 5.1 unified them);
# the older ones come from arch/x86/entry/syscalls/syscall_64.tbl and the
# asm-generic table that aarch64 (and riscv64, loongarch64) use.
_UNIFIED = {"openat2": 437, "statmount": 457, "listmount": 458}
_PER_ARCH = {
    "x86_64": {"statx": 332, "name_to_handle_at": 303, "fanotify_init": 300, "fanotify_mark": 301},
    "aarch64": {"statx": 291, "name_to_handle_at": 264, "fanotify_init": 262, "fanotify_mark": 263},
    "riscv64": {"statx": 291, "name_to_handle_at": 264, "fanotify_init": 262, "fanotify_mark": 263},
}

# The errnos of a syscall that cannot be used here, which say nothing about the object asked
# for: ENOSYS, the kernel lacks it (or an emulator does, or a seccomp profile stubs syscalls
# newer than itself: runc's and Docker's default profile answer ENOSYS for those), and EPERM,
# a seccomp profile or an LSM denies it. Every caller that meets one uses the next way of
# answering (strategies/_calls.refused) or reports the interface missing or blocked (probe).
OFF = frozenset((errno.ENOSYS, errno.EPERM))

libc = ctypes.CDLL(None, use_errno=True)


def number(name: str) -> Optional[int]:
    """The syscall number of ``name`` on this machine, or None where we do not know it."""
    if name in _UNIFIED:
        return _UNIFIED[name]
    return _PER_ARCH.get(_MACHINE, {}).get(name)


def prototype(name: str, restype: Any, *argtypes: Any) -> Any:
    """A typed ``syscall(nr, ...)`` function for ``name``; None on an unknown architecture."""
    if number(name) is None:
        return None
    proto = ctypes.CFUNCTYPE(restype, ctypes.c_long, *argtypes, use_errno=True)
    return proto(("syscall", libc))


def untyped(name: str, restype: Any) -> Any:
    """A ``syscall(nr, ...)`` without argument types, for hot paths that pass arguments
    already boxed as ctypes objects: ctypes then converts nothing per call (statmount once
    per mount in a listing, ``scripts/bench_core.py``)."""
    if number(name) is None:
        return None
    call = libc["syscall"]  # a fresh function object: restype is ours alone
    call.restype = restype
    return call


def raise_errno(what: Optional[bytes] = None) -> NoReturn:
    """Raise the OSError subclass that matches the errno the last call left."""
    err = ctypes.get_errno()
    if what is None:
        raise OSError(err, os.strerror(err))
    raise OSError(err, os.strerror(err), os.fsdecode(what))


def missing(name: str) -> NoReturn:
    """Raise ENOSYS for a syscall whose number this architecture table lacks."""
    raise OSError(errno.ENOSYS, f"{name}: no syscall number known for {_MACHINE}")
