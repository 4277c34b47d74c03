"""``wait_for_mount()`` and ``wait_for_unmount()``: block until a question about one path
(or one mount) has the awaited answer.

They keep no view: each change in the namespace wakes them (``_Bell``: ``POLLPRI`` on
mountinfo, else a fanotify group), and they ask their one question again, through ``api``.
"""

from __future__ import annotations

import os
import select
import time

from .. import _paths
from .._seconds import LONGEST_WAIT, seconds
from ..errors import MountprobeError, timed_out
from ..kernel import fanotify as kf
from ..model import Mount
from .fanotify import group
from .poll import open_mountinfo, poll_pri

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Tuple, Union

    from .._paths import PathArg

    _Check = Callable[[], Tuple[bool, Optional[Mount]]]


class _Bell:
    """Wakes on any mount change in this namespace: POLLPRI on mountinfo, else a fanotify group."""

    def __init__(self) -> None:
        fd = open_mountinfo()
        self._fan = fd is None
        self._fd = group() if fd is None else fd

    def wait(self, left: float) -> None:
        """Until a change, or ``left`` seconds (> 0, inf included) have passed, or one day."""
        left = min(left, LONGEST_WAIT)
        if self._fan:
            ready = select.select([self._fd], [], [], left)[0]
            if ready:
                kf.mount_events(self._fd)
            return
        poll_pri(self._fd, max(1, int(left * 1000 + 0.999)))

    def close(self) -> None:
        os.close(self._fd)


def _wait(check: _Check, timeout: Optional[float], limit: float, what: str) -> Optional[Mount]:
    until = time.monotonic() + limit
    bell = _Bell()  # before the first check: a change after it rings
    try:
        while True:
            done, found = check()
            if done:
                return found
            left = until - time.monotonic()
            if left <= 0:
                raise timed_out(what, timeout)
            bell.wait(left)
    finally:
        bell.close()


def wait_for_mount(
    path: PathArg, *, source: Optional[PathArg] = None, fstype: Optional[str] = None, timeout: Optional[float]
) -> Mount:
    """Block until a mount matching ``source`` and ``fstype`` (as ``is_mounted`` matches
    them) is visible at ``path``; return it. ``path`` need not exist yet. TimeoutError after
    ``timeout`` seconds (None or inf: no limit; TypeError or ValueError for one that is no
    number of seconds >= 0). Woken by the kernel on each change in the namespace."""
    limit = seconds(timeout, "wait_for_mount")

    check, what = mount_check(path, source, fstype)
    found = _wait(check, timeout, limit, what)
    if found is None:  # unmounted between the check and mount_at: rare, and said plainly
        raise MountprobeError(f"{os.fsdecode(_paths.to_bytes(path))}: mounted, then gone before it could be read")
    return found


def wait_for_unmount(path_or_mount: Union[PathArg, Mount], *, timeout: Optional[float]) -> Optional[Mount]:
    """Block until the mount is gone; return it as last seen. Given a ``Mount``: until that
    very mount is detached (``still_mounted`` is False). Given a path: until nothing is
    mounted at it (a mount uncovered below counts as still mounted); None when nothing was
    mounted there at the call. TimeoutError after ``timeout`` seconds (None or inf: no
    limit; TypeError or ValueError for one that is no number of seconds >= 0)."""
    limit = seconds(timeout, "wait_for_unmount")

    check, what = unmount_check(path_or_mount)
    return _wait(check, timeout, limit, what)


def mount_check(path: PathArg, source: Optional[PathArg], fstype: Optional[str]) -> Tuple[_Check, str]:
    """The question ``wait_for_mount`` asks at each change (blocking, or in ``aio``), and
    how its errors name it."""
    from .. import api  # on the first wait: importing events (the watch command) needs none

    def check() -> Tuple[bool, Optional[Mount]]:
        try:
            if api.is_mounted(path, source=source, fstype=fstype):
                return True, api.mount_at(path)
        except (FileNotFoundError, NotADirectoryError):
            pass  # not there yet: the mount may come with it
        return False, None

    return check, f"wait_for_mount({os.fsdecode(_paths.to_bytes(path))!r})"


def unmount_check(path_or_mount: Union[PathArg, Mount]) -> Tuple[_Check, str]:
    """The question ``wait_for_unmount`` asks at each change, and how its errors name it.
    For a path, the mount there now is read at once: a missing path raises here."""
    from .. import api  # on the first wait: importing events (the watch command) needs none

    if isinstance(path_or_mount, Mount):
        m = path_or_mount

        def gone() -> Tuple[bool, Optional[Mount]]:
            return not api.still_mounted(m), m

        return gone, f"wait_for_unmount({m.mountpoint!r})"
    path = path_or_mount
    last = [api.mount_at(path)]

    def empty() -> Tuple[bool, Optional[Mount]]:
        try:
            now = api.mount_at(path)
        except (FileNotFoundError, NotADirectoryError):
            now = None  # removed after its umount
        if now is None:
            return True, last[0]
        last[0] = now
        return False, now

    return empty, f"wait_for_unmount({os.fsdecode(_paths.to_bytes(path))!r})"
