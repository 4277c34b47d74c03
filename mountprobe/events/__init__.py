"""Mount events: ``watch()`` (a ``Watcher`` of ``Event`` records), ``wait_for_mount()``
and ``wait_for_unmount()``.

``watcher`` holds the watcher and its view, ``backend`` what a backend is (and the
``Event`` record), ``fanotify`` and ``poll`` one backend each, ``waits`` the waits.
"""

from .backend import ACTIONS, MOUNT, MOVE, REMOUNT, UMOUNT, Event
from .waits import wait_for_mount, wait_for_unmount
from .watcher import FANOTIFY, POLL, Watcher, watch

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
