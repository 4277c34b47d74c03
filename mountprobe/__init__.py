"""mountprobe: answers about Linux mounts from the kernel itself.

Each question is answered by the cheapest interface this kernel and sandbox allow (statx,
statmount/listmount, openat2, name_to_handle_at), and by a filtered read of
``/proc/thread-self/mountinfo`` only where none can. Errors are exceptions, never False.
"""

from .api import (
    Answer,
    is_mounted,
    is_mountpoint,
    last_answer,
    list_mounts,
    mount_at,
    mount_of,
    mount_root,
    mounts_under,
    still_mounted,
)
from .errors import MountprobeError, ParseError, ParseWarning, Unsupported
from .model import Mount
from .mountinfo import ProcUnavailable, parse_mountinfo, read_mountinfo
from .probe import Capabilities, Interface, capabilities

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Capabilities",
    "Interface",
    "Mount",
    "MountprobeError",
    "ParseError",
    "ParseWarning",
    "ProcUnavailable",
    "Unsupported",
    "capabilities",
    "is_mounted",
    "is_mountpoint",
    "last_answer",
    "list_mounts",
    "mount_at",
    "mount_of",
    "mount_root",
    "mounts_under",
    "parse_mountinfo",
    "read_mountinfo",
    "still_mounted",
]
