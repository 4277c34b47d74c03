"""The chain runner: each question's strategies, cheapest first, and which one answered.

A question (``mountprobe.api``) calls ``run`` with its arguments, the last of which is the
``Where`` (``mountprobe.namespaces``): None for the caller's own mount namespace, a
``Target`` for another. The first strategy that can answer there answers; one that cannot
raises ``Unsupported`` with the reason, and the next is asked. ``last_answer()`` says which
one answered this thread's last question and why the ones before it declined.
"""

from __future__ import annotations

from _thread import _local

from . import _lazy
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

    from .model import Answer

    Chain = Sequence[Tuple[str, str]]

# Each question's chain: (strategy module, function), cheapest first. Modules are imported
# when a question first reaches them, so a command loads only what answers it. Every import
# made inside a function here goes through ``_lazy.load`` first (fork, chroot: see there);
# the ``from ... import`` after it then only reads ``sys.modules``.
CHAINS: Dict[str, Chain] = {
    "is_mountpoint": (
        ("statx", "is_mountpoint"),
        ("openat2", "is_mountpoint"),
        ("handle", "is_mountpoint"),
        ("mountinfo", "is_mountpoint"),
    ),
    # devcmp answers in the caller's namespace; in another one the mount records do.
    "is_mountpoint(bind=False)": (
        ("devcmp", "differs_from_parent"),
        ("statmount", "differs_from_parent"),
        ("mountinfo", "differs_from_parent"),
    ),
    "mount_of": (("statmount", "mount_of"), ("mountinfo", "mount_of")),
    "mount_at": (("statmount", "mount_at"), ("mountinfo", "mount_at")),
    # The mount point alone needs no record: statmount's MNT_POINT by unique id (6.8, filled
    # whatever the kernel's other fields), else a statx walk up the path (5.8: mount ids and
    # MOUNT_ROOT); the table only before 5.8 or where both are blocked.
    "mount_root": (("statmount", "mount_root"), ("statx", "mount_root"), ("mountinfo", "mount_root")),
    "mounts_under": (("statmount", "mounts_under"), ("mountinfo", "mounts_under")),
    "mounts_under(source=, fstype=)": (
        ("statmount", "mounts_under_matching"),
        ("mountinfo", "mounts_under_matching"),
    ),
    "list_mounts": (("statmount", "list_mounts"), ("mountinfo", "list_mounts")),
    "list_mounts(source=, fstype=, root=)": (("statmount", "list_matching"), ("mountinfo", "list_matching")),
    # What statx and statmount's always-filled fields prove (5.8, 6.8); where they cannot,
    # api.is_mounted compares the records of mount_at (and mount_of of a bind source).
    "is_mounted": (("attrs", "is_mounted"),),
    # statmount's MNT_BASIC by unique id (6.8), whatever the kernel's other fields.
    "still_mounted": (("statmount", "still_mounted"), ("mountinfo", "still_mounted")),
}

# The parameters every strategy of a question takes, in the order ``run`` passes them: the
# strategies are found by name, so tests/test_chain.py checks each against this.
PARAMETERS: Dict[str, Tuple[str, ...]] = {
    "is_mountpoint": ("path", "follow", "where"),
    "is_mountpoint(bind=False)": ("path", "follow", "where"),
    "mount_of": ("path", "follow", "with_propagate_from", "where"),
    "mount_at": ("path", "with_propagate_from", "where"),
    "mount_root": ("path", "where"),
    "mounts_under": ("path", "include_self", "with_propagate_from", "where"),
    "mounts_under(source=, fstype=)": ("path", "include_self", "needle", "with_propagate_from", "where"),
    "list_mounts": ("with_propagate_from", "where"),
    "list_mounts(source=, fstype=, root=)": ("needle", "with_propagate_from", "where"),
    "still_mounted": ("m", "where"),
    "is_mounted": ("path", "source", "fstype", "from_root", "where"),
}

_functions: Dict[Tuple[str, str], Callable[..., Any]] = {}
_state = _local()


def _function(module: str, name: str) -> Callable[..., Any]:
    found = _functions.get((module, name))
    if found is None:
        strategy = _lazy.load(f"{__package__}.strategies.{module}")
        found = _functions[(module, name)] = getattr(strategy, name)
    return found


def strategies(question: str) -> List[Tuple[str, Callable[..., Any]]]:
    """The chain of ``question`` (a key of ``CHAINS``) as (strategy, function) pairs."""
    return [(module, _function(module, name)) for module, name in CHAINS[question]]


def run(question: str, *args: Any) -> Any:
    """The answer of the first strategy of ``question`` that can give one; ``args`` are
    ``PARAMETERS[question]``, the ``Where`` last."""
    declined: List[Tuple[str, str]] = []
    for module, name in CHAINS[question]:
        try:
            result = (_functions.get((module, name)) or _function(module, name))(*args)
        except Unsupported as why:
            declined.append((module, str(why)))
            continue
        _state.last = (question, module, declined)
        return result
    _state.last = (question, "", declined)
    raise Unsupported(f"{question}: no strategy can answer here: " + "; ".join(f"{n}: {w}" for n, w in declined))


def last_answer() -> Optional[Answer]:
    """Which strategy answered this thread's last question, and why earlier ones declined."""
    _lazy.load(f"{__package__}.model")
    from .model import Answer

    last = getattr(_state, "last", None)
    if last is None:
        return None
    return Answer(last[0], last[1], tuple(last[2]))
