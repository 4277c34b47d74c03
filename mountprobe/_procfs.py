"""Where this thread's mountinfo is found in procfs: the one list every reader tries in turn."""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List


def mountinfo_paths() -> List[str]:
    """The mountinfo files of the calling thread, best first. Syscalls act on the calling
    thread's namespace and root; /proc/self is the thread-group leader, which may live
    elsewhere (a thread that unshared). thread-self is 3.17+, and missing with a foreign pid
    namespace's procfs (moby/sys PRs #128, #135): then the thread's own task directory."""
    return [
        "/proc/thread-self/mountinfo",
        f"/proc/self/task/{_thread.get_native_id()}/mountinfo",
        "/proc/self/mountinfo",
    ]
