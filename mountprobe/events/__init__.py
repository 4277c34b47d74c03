"""Mount events: ``watch()`` (a ``Watcher`` of ``Event`` records), ``wait_for_mount()``
and ``wait_for_unmount()``. ``watcher`` says what each backend reports."""

from .waits import wait_for_mount, wait_for_unmount
from .watcher import (
    ACTIONS,
    FANOTIFY,
    MOUNT,
    MOVE,
    POLL,
    REMOUNT,
    UMOUNT,
    Event,
    Watcher,
    watch,
)

__all__ = [
    "ACTIONS",
    "FANOTIFY",
    "MOUNT",
    "MOVE",
    "POLL",
    "REMOUNT",
    "UMOUNT",
    "Event",
    "Watcher",
    "wait_for_mount",
    "wait_for_unmount",
    "watch",
]
