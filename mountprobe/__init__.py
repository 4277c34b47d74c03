"""mountprobe: answers about Linux mounts from the kernel itself.

Each question is answered by the cheapest interface this kernel and sandbox allow (statx,
statmount/listmount, openat2, name_to_handle_at), and by a filtered read of
``/proc/thread-self/mountinfo`` only where none can. Errors are exceptions, never False.
"""

__version__ = "0.3.0"

from . import _lazy

# The public names and the module each lives in: the one table from which ``__all__`` and
# the lazy imports come (tests/test_public_names.py holds the typed imports below to it).
# The names load on first use (PEP 562): ``mountprobe is-mountpoint`` must start in a few
# milliseconds, and the records, the parser and most strategies are not needed for it.
# Every late import goes through ``_lazy.load``: see there why (fork, chroot).
_HOMES = {
    "is_mounted": "api",
    "is_mountpoint": "api",
    "last_answer": "api",
    "list_mounts": "api",
    "mount_at": "api",
    "mount_of": "api",
    "mount_root": "api",
    "mounts_under": "api",
    "still_mounted": "api",
    "MountedBelow": "errors",
    "MountprobeError": "errors",
    "ParseError": "errors",
    "ParseWarning": "errors",
    "ProcUnavailable": "errors",
    "Unsupported": "errors",
    "Event": "events",
    "Watcher": "events",
    "wait_for_mount": "events",
    "wait_for_unmount": "events",
    "watch": "events",
    "Holder": "inventory",
    "Namespace": "inventory",
    "holders": "inventory",
    "mount_namespaces": "inventory",
    "Answer": "model",
    "Mount": "model",
    "parse_mountinfo": "mountinfo",
    "read_mountinfo": "mountinfo",
    "Capabilities": "probe",
    "Interface": "probe",
    "capabilities": "probe",
    "safe_rmtree": "rmtree",
    "with_timeout": "timeout",
}
__all__ = [*_HOMES, "preload"]
# What the functions of a home module import when they first run: loaded with it, so that
# no import is left to happen in a thread while another forks.
_ALSO = {
    "events": ("api", "probe", "strategies._resolve", "strategies.statmount"),
    "rmtree": ("api", "probe", "strategies._calls", "strategies._resolve"),
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import is_mounted as is_mounted
    from .api import is_mountpoint as is_mountpoint
    from .api import last_answer as last_answer
    from .api import list_mounts as list_mounts
    from .api import mount_at as mount_at
    from .api import mount_of as mount_of
    from .api import mount_root as mount_root
    from .api import mounts_under as mounts_under
    from .api import still_mounted as still_mounted
    from .errors import MountedBelow as MountedBelow
    from .errors import MountprobeError as MountprobeError
    from .errors import ParseError as ParseError
    from .errors import ParseWarning as ParseWarning
    from .errors import ProcUnavailable as ProcUnavailable
    from .errors import Unsupported as Unsupported
    from .events import Event as Event
    from .events import Watcher as Watcher
    from .events import wait_for_mount as wait_for_mount
    from .events import wait_for_unmount as wait_for_unmount
    from .events import watch as watch
    from .inventory import Holder as Holder
    from .inventory import Namespace as Namespace
    from .inventory import holders as holders
    from .inventory import mount_namespaces as mount_namespaces
    from .model import Answer as Answer
    from .model import Mount as Mount
    from .mountinfo import parse_mountinfo as parse_mountinfo
    from .mountinfo import read_mountinfo as read_mountinfo
    from .probe import Capabilities as Capabilities
    from .probe import Interface as Interface
    from .probe import capabilities as capabilities
    from .rmtree import safe_rmtree as safe_rmtree
    from .timeout import with_timeout as with_timeout


def preload() -> None:
    """Import now everything that any function of mountprobe may need later: every module,
    every strategy of every question, ``re`` (for names with rare escapes), ``select`` (to
    ask whether the mount table changed during a read), ``threading`` (to read a large table
    on another CPU while parsing it) and psutil (for
    ``mount_namespaces`` and ``holders``) where installed. Call it before the process may
    lose access to the files of its Python installation: before a ``chroot``, a setuid to a
    user who cannot read them, or a sandbox that hides them. Afterwards every function
    works (or raises its usual errors: without /proc, ``ProcUnavailable`` where only /proc
    could answer). Without it such a process gets a ``MountprobeError`` that says so."""
    for home in {*_HOMES.values(), *(also for homes in _ALSO.values() for also in homes)}:
        _lazy.load(f"{__name__}.{home}")
    api = _lazy.load(f"{__name__}.api")
    for question in api.CHAINS:
        api.strategies(question)
    for extra in ("re", "select", "threading", "psutil"):
        try:
            _lazy.load(extra)
        except ImportError:
            continue  # psutil is optional: mount_namespaces and holders say it is missing


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mountprobe' has no attribute {name!r}")
    for also in _ALSO.get(home, ()):
        _lazy.load(f"{__name__}.{also}")
    value = getattr(_lazy.load(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:  # type: ignore[type-arg]
    return sorted([*globals(), *_HOMES])
