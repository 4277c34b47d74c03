"""A classic-BPF seccomp filter that makes chosen syscalls fail with a chosen errno: how
tests simulate old kernels (ENOSYS) and locked-down sandboxes (EPERM) without patching."""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Dict, Optional

_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[os.uname().machine]
NUMBERS = {
    "x86_64": {"statx": 332, "name_to_handle_at": 303, "openat2": 437, "statmount": 457, "listmount": 458},
    "aarch64": {"statx": 291, "name_to_handle_at": 264, "openat2": 437, "statmount": 457, "listmount": 458},
}[os.uname().machine]

_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_KILL = 0x80000000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
# Where a syscall's flags argument lies in struct seccomp_data (args[i] at 16 + 8 * i, low
# word first on little-endian): name_to_handle_at(dfd, path, handle, mount_id, flags).
FLAGS_ARG = {"name_to_handle_at": 16 + 8 * 4}


def fail_syscalls(errnos: Dict[str, int], when_flag: Optional[Dict[str, int]] = None) -> None:
    """Install a filter on this process: each named syscall fails with its errno, or only
    when its flags argument has a bit of ``when_flag[name]`` (a kernel without that flag)."""
    when_flag = when_flag or {}
    prog = [_insn(_LD_ABS, 0, 0, 4), _insn(_JEQ, 1, 0, _ARCH), _insn(_RET, 0, 0, _KILL)]
    for name, err in errnos.items():
        prog.append(_insn(_LD_ABS, 0, 0, 0))
        if name in when_flag:
            prog += [
                _insn(_JEQ, 0, 3, NUMBERS[name]),
                _insn(_LD_ABS, 0, 0, FLAGS_ARG[name]),
                _insn(_JSET, 0, 1, when_flag[name]),
            ]
        else:
            prog.append(_insn(_JEQ, 0, 1, NUMBERS[name]))
        prog.append(_insn(_RET, 0, 0, _ERRNO | err))
    prog.append(_insn(_RET, 0, 0, _ALLOW))
    code = ctypes.create_string_buffer(b"".join(prog))
    fprog = struct.pack("=HxxxxxxQ", len(prog), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    buf = ctypes.create_string_buffer(fprog)
    if libc.prctl(22, 2, ctypes.c_void_p(ctypes.addressof(buf)), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
