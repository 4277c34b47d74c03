"""ioctls on namespace files (``/proc/<pid>/ns/mnt``): the namespace's type (4.11), its
64-bit id (6.11) and its mount count (6.12); and the one on a pidfd that hands out a
process's mount namespace file without /proc (6.11)."""

from __future__ import annotations

import fcntl
import os
import struct

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3): the CLONE_NEW* flag of the namespace
NS_GET_MNTNS_ID = 0x8008B705  # _IOR(0xb7, 5, u64)
NS_MNT_GET_INFO = 0x8010B70A  # _IOR(0xb7, 10, struct mnt_ns_info)
PIDFD_GET_MNT_NAMESPACE = 0xFF03  # _IO(PIDFS_IOCTL_MAGIC 0xff, 3), include/uapi/linux/pidfd.h
CLONE_NEWNS = 0x00020000

_INFO = struct.Struct("=IIQ")  # struct mnt_ns_info: size, nr_mounts, mnt_ns_id


def namespace_type(fd: int) -> int:
    """The ``CLONE_NEW*`` flag of the namespace file ``fd``; ENOTTY if it is none."""
    return fcntl.ioctl(fd, NS_GET_NSTYPE)


def mount_namespace_id(fd: int) -> int:
    """The 64-bit id of the mount namespace ``fd`` (the space of ``mnt_ns_id``)."""
    buf = bytearray(8)
    fcntl.ioctl(fd, NS_GET_MNTNS_ID, buf)
    return int.from_bytes(buf, "little")


def mount_namespace_info(fd: int) -> tuple[int, int]:
    """(number of mounts, id) of the mount namespace ``fd``."""
    buf = bytearray(_INFO.pack(_INFO.size, 0, 0))
    fcntl.ioctl(fd, NS_MNT_GET_INFO, buf)
    _size, count, ns_id = _INFO.unpack(buf)
    return count, ns_id


def pidfd_mount_namespace(pidfd: int) -> int:
    """A new descriptor of the mount namespace of the process ``pidfd`` refers to (the
    caller needs ptrace read access to it); ENOTTY before 6.11."""
    fd: int = fcntl.ioctl(pidfd, PIDFD_GET_MNT_NAMESPACE)
    os.set_inheritable(fd, False)
    return fd
