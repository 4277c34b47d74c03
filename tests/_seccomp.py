"""A classic-BPF seccomp filter that makes chosen syscalls fail with a chosen errno: how
tests simulate old kernels (ENOSYS) and locked-down sandboxes (EPERM) without patching."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import Callable, Dict, List, Optional

from mountprobe import probe

# AUDIT_ARCH_* of the architecture, and the numbers of seccomp(2) and of the filtered calls:
# on another architecture the module still imports and a filter skips the test.
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}.get(os.uname().machine, 0)
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(os.uname().machine, 0)
NUMBERS = {
    "x86_64": {"statx": 332, "name_to_handle_at": 303, "openat2": 437, "statmount": 457, "listmount": 458}
    | {"fanotify_init": 300, "openat": 257, "sendfile": 40, "memfd_create": 319},
    "aarch64": {"statx": 291, "name_to_handle_at": 264, "openat2": 437, "statmount": 457, "listmount": 458}
    | {"fanotify_init": 262, "openat": 56, "sendfile": 71, "memfd_create": 279},
}.get(os.uname().machine, {})

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_KILL = 0x80000000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _prologue() -> List[bytes]:
    """Kill a call made under another architecture's convention (its numbers name other
    syscalls), then load the syscall number."""
    if not _ARCH:
        import pytest

        pytest.skip(f"no seccomp numbers for {os.uname().machine} in tests/_seccomp.py")
    return [_insn(_LD_ABS, 0, 0, 4), _insn(_JEQ, 1, 0, _ARCH), _insn(_RET, 0, 0, _KILL), _insn(_LD_ABS, 0, 0, 0)]


def _rule(name: str, action: int, word: int = 0, bits: int = 0) -> List[bytes]:
    """Return ``action`` for syscall ``name`` (with ``bits``: only when the argument word at
    offset ``word`` of struct seccomp_data has one of them); otherwise go on to the next
    rule with the syscall number loaded."""
    if not bits:
        return [_insn(_JEQ, 0, 1, NUMBERS[name]), _insn(_RET, 0, 0, action)]
    return [
        _insn(_JEQ, 0, 4, NUMBERS[name]),
        _insn(_LD_ABS, 0, 0, word),
        _insn(_JSET, 0, 1, bits),
        _insn(_RET, 0, 0, action),
        _insn(_LD_ABS, 0, 0, 0),
    ]


_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
# Where a syscall's flags argument lies in struct seccomp_data (args[i] at 16 + 8 * i, low
# word first on little-endian): name_to_handle_at(dfd, path, handle, mount_id, flags).
FLAGS_ARG = {"name_to_handle_at": 16 + 8 * 4}


def fail_syscalls(errnos: Dict[str, int], when_flag: Optional[Dict[str, int]] = None) -> None:
    """Install a filter on this process: each named syscall fails with its errno, or only
    when its flags argument has a bit of ``when_flag[name]`` (a kernel without that flag)."""
    when_flag = when_flag or {}
    prog = _prologue()
    for name, err in errnos.items():
        prog += _rule(name, _ERRNO | err, FLAGS_ARG.get(name, 0), when_flag.get(name, 0))
    _install([*prog, _insn(_RET, 0, 0, _ALLOW)])


def _install(prog: List[bytes], flags: int = 0) -> int:
    """Install ``prog`` on this thread (seccomp(SECCOMP_SET_MODE_FILTER)); what the syscall
    returns (the listener's fd with SECCOMP_FILTER_FLAG_NEW_LISTENER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    code = ctypes.create_string_buffer(b"".join(prog))
    fprog = ctypes.create_string_buffer(struct.pack("=HxxxxxxQ", len(prog), ctypes.addressof(code)))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    libc.syscall.restype = ctypes.c_long
    result = int(libc.syscall(_SYS_SECCOMP, 1, flags, fprog))  # SECCOMP_SET_MODE_FILTER
    if result < 0:
        raise OSError(ctypes.get_errno(), f"seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x})")
    return result


# A kernel from 5.8 to 6.7 ignores the unknown STATX_MNT_ID_UNIQUE bit: statx succeeds with
# the legacy id in stx_mnt_id and STATX_MNT_ID (not _UNIQUE) in stx_mask. No errno can say
# that, so a user-notification filter hands such calls to a supervisor thread, which makes
# the call without the bit and writes the reply where the caller expects it.
_RET_USER_NOTIF = 0x7FC00000
_FLAG_NEW_LISTENER = 1 << 3
_NOTIF = struct.Struct("=QII iIQ6Q")  # id, pid, flags, seccomp_data (nr, arch, ip, args)
_NOTIF_RESP = struct.Struct("=QqiI")  # id, val, error, flags
_NOTIF_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV
_NOTIF_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND
STATX_MNT_ID_UNIQUE = 0x4000
MASK_ARG = 16 + 8 * 3  # statx(dirfd, path, flags, mask, buf)


_FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE: let the kernel run the call as made
CONTINUE = object()  # a handler's answer: run the call unchanged


def _supervise(prog: list[bytes], handle: Callable[[int, int, tuple[int, ...]], object]) -> None:
    """Install ``prog`` (ending in RET_USER_NOTIF for the calls to hand over) on this thread,
    with a supervisor thread that calls ``handle(nr, flags, args)`` for each one and returns
    to the caller what it answers: CONTINUE, a result (int >= 0) or an errno (int < 0).
    The supervisor starts before the filter, so it is not filtered itself; it shares the
    caller's address space, so pointers in ``args`` are its to read and write."""
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    listener: list[int] = []
    ready = threading.Event()

    def supervise() -> None:
        ready.wait()
        buf = ctypes.create_string_buffer(_NOTIF.size)
        while True:
            ctypes.memset(buf, 0, _NOTIF.size)
            if libc.ioctl(listener[0], _NOTIF_RECV, buf) != 0:
                continue
            notif_id, _pid, flags, nr, _arch, _ip, *args = _NOTIF.unpack(buf.raw)
            answer: object = CONTINUE
            try:
                answer = handle(nr, flags, tuple(args))
            finally:
                if answer is CONTINUE:
                    resp = _NOTIF_RESP.pack(notif_id, 0, 0, _FLAG_CONTINUE)
                else:
                    value = int(answer)  # type: ignore[call-overload]
                    resp = _NOTIF_RESP.pack(notif_id, max(value, 0), min(value, 0), 0)
                libc.ioctl(listener[0], _NOTIF_SEND, ctypes.create_string_buffer(resp))

    threading.Thread(target=supervise, daemon=True).start()
    listener.append(_install(prog, _FLAG_NEW_LISTENER))
    ready.set()


def _hand_over(*names: str) -> list[bytes]:
    """A filter that hands the named syscalls to the supervisor and allows every other."""
    prog = _prologue()
    for name in names:
        prog += _rule(name, _RET_USER_NOTIF)
    return [*prog, _insn(_RET, 0, 0, _ALLOW)]


def statx_without_unique_ids() -> None:
    """From now on, in this thread, statx behaves as before Linux 6.8: the unique-id bit of
    the mask is ignored. The supervisor makes the call without the bit and writes the reply
    where the caller expects it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def without_the_bit(_nr: int, _flags: int, args: tuple[int, ...]) -> object:
        dirfd, path, flags, mask, out = args[:5]
        result = libc.syscall(
            NUMBERS["statx"],
            ctypes.c_int(dirfd & 0xFFFFFFFF).value,
            ctypes.c_void_p(path),
            ctypes.c_int(flags),
            ctypes.c_uint(mask & ~STATX_MNT_ID_UNIQUE),
            ctypes.c_void_p(out),
        )
        return -ctypes.get_errno() if result < 0 else result

    prog = [*_prologue(), *_rule("statx", _RET_USER_NOTIF, MASK_ARG, STATX_MNT_ID_UNIQUE), _insn(_RET, 0, 0, _ALLOW)]
    _supervise(prog, without_the_bit)


def before_open(hook: Callable[[bytes], None]) -> None:
    """From now on, in this thread, each openat(2) and openat2(2) first waits for
    ``hook(path)`` to return (run by the supervisor), then runs unchanged: a test's way to
    change the world at an exact point of a walk (a mount appearing mid-deletion)."""

    def first_the_hook(_nr: int, _flags: int, args: tuple[int, ...]) -> object:
        hook(ctypes.string_at(args[1]))
        return CONTINUE

    _supervise(_hand_over("openat", "openat2"), first_the_hook)


def without_mnt_ns_fd() -> None:
    """From now on, in this thread, listmount and statmount behave as on 6.11-6.17: a request
    whose ``mnt_ns_fd`` word (then ``spare``) is not 0 fails with EINVAL; every other call
    runs unchanged."""

    def refuse_ns_fd(_nr: int, _flags: int, args: tuple[int, ...]) -> object:
        (ns_fd,) = struct.unpack_from("=I", ctypes.string_at(args[0] + 4, 4))
        return -22 if ns_fd else CONTINUE  # EINVAL

    _supervise(_hand_over("statmount", "listmount"), refuse_ns_fd)


AT_HANDLE_MNT_ID_UNIQUE, AT_HANDLE_FID = 0x001, 0x200


def as_linux_6_1() -> None:
    """From now on this process meets the interfaces of Linux 6.1: no listmount or statmount
    (6.8), statx ignores STATX_MNT_ID_UNIQUE (6.8), name_to_handle_at knows neither
    AT_HANDLE_FID (6.5) nor AT_HANDLE_MNT_ID_UNIQUE (6.12), fanotify_init no FAN_REPORT_MNT
    (6.15). No unique id anywhere: only the legacy ids, which the kernel reuses."""
    fail_syscalls(
        {"statmount": errno.ENOSYS, "listmount": errno.ENOSYS, "fanotify_init": errno.EINVAL}
        | {"name_to_handle_at": errno.EINVAL},
        when_flag={"name_to_handle_at": AT_HANDLE_MNT_ID_UNIQUE | AT_HANDLE_FID},
    )
    statx_without_unique_ids()
    probe.forget()
