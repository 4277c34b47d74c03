"""``is_mounted`` from the mount records (``mount_at``, and ``mount_of`` of a bind source):
every source and type the records describe, in any namespace. The table-free ``attrs``
strategy answers first where the kernel's always-present fields are enough."""

from __future__ import annotations

from .. import _lazy, chain
from . import _resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .._paths import PathArg
    from ..model import Mount
    from ..namespaces import Where

_SOURCES = f"{str(__package__).rpartition('.')[0]}.sources"


def is_mounted(
    path: bytes, source: Optional[PathArg], fstype: Optional[str], from_root: bool, where: Where = None
) -> bool:
    """Is a mount of ``source`` (and type ``fstype``) at ``path``?"""
    m: Optional[Mount] = chain.run("mount_at", path, False, where)
    if m is None:
        return False
    if fstype is not None and fstype not in (m.fstype, m.fstype.partition(".")[0]):
        return False
    if source is None:
        return True
    _lazy.load(_SOURCES)
    from ..sources import matches

    def holder(p: bytes) -> Mount:
        if where is None and p.endswith((b"/", b"/.", b"/..")):  # as the caller's question
            p = _resolve.tidy(p, True)[0]
        found: Mount = chain.run("mount_of", p, True, False, where)
        return found

    return matches(m, source, where, holder, from_root)
