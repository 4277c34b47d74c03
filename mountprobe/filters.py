"""What ``list_mounts(source=, fstype=, root=)`` keeps: a ``Needle``, built once per question
from what the caller named, which the strategies use twice. First to sift cheaply before any
record is built (the devices, source text, types and root a matching mount must have: raw
mountinfo lines by ``mountinfo.sift``, or the smallest statmount per mount), then ``keep``
on the few records built, with exactly ``is_mounted``'s meaning of ``source`` (the matching
of ``mountprobe.sources``) and ``fstype``."""

from __future__ import annotations

import os
import stat

from . import sources
from ._paths import to_bytes
from .errors import Unsupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple, Union

    from ._paths import PathArg
    from .model import Mount
    from .namespaces import Where

    FsTypes = Union[str, Iterable[str]]


class Needle:
    """The conditions of one filtered question. ``devnos``: the superblock devices a match
    must be on (None: any); ``text``: the source text it must report (a trailing ``/``
    aside); ``fstypes``: types of which it must have one, exactly or as its main type;
    ``root``: its root. ``keep(m)`` is the exact test of a record."""

    __slots__ = ("_exact", "_tags", "devnos", "fstypes", "root", "text")

    def __init__(
        self,
        devnos: Optional[FrozenSet[Tuple[int, int]]],
        text: Optional[bytes],
        fstypes: Optional[Tuple[str, ...]],
        root: Optional[str],
        exact: Optional[Callable[[Mount], bool]],
        tags: Optional[_TagMatch] = None,
    ) -> None:
        self.devnos = devnos
        self.text = text
        self.fstypes = fstypes
        self.root = root
        self._exact = exact
        self._tags = tags

    def found(self, kept: List[Mount]) -> List[Mount]:
        """``kept``, the records this needle kept; when none, and a tag's device could not
        be read, that error (a silent empty answer would say the tag is nowhere)."""
        if not kept and self._tags is not None and self._tags.errors:
            raise self._tags.errors[0]
        return kept

    def keep(self, m: Mount) -> bool:
        """Does the record ``m`` match, with ``is_mounted``'s meaning of each condition?"""
        if self.devnos is not None and (m.major, m.minor) not in self.devnos:
            return False
        if self.fstypes is not None and m.fstype not in self.fstypes and m.fstype.partition(".")[0] not in self.fstypes:
            return False
        if self.root is not None and m.root != self.root:
            return False
        if self.text is not None and not sources._same_source_text(m.source, self.text):
            return False
        return self._exact is None or self._exact(m)

    def raw(
        self,
    ) -> Tuple[Optional[FrozenSet[Tuple[int, int]]], Optional[bytes], Optional[List[bytes]], Optional[bytes]]:
        """The arguments of ``mountinfo.sift`` for this needle."""
        return (
            self.devnos,
            self.text,
            None if self.fstypes is None else [os.fsencode(t) for t in self.fstypes],
            None if self.root is None else os.fsencode(self.root),
        )


def _fstypes(fstype: Optional[FsTypes]) -> Optional[Tuple[str, ...]]:
    if fstype is None:
        return None
    if not isinstance(fstype, (str, list, tuple, set, frozenset)):
        raise TypeError(f"fstype takes a type name or several (str, or a list of str), not {type(fstype).__name__}")
    names = (fstype,) if isinstance(fstype, str) else tuple(fstype)
    if not names or not all(isinstance(t, str) and t for t in names):
        raise ValueError(f"fstype takes a type name or several, not {fstype!r}")
    return names


def root_text(root: Optional[PathArg]) -> Optional[str]:
    if root is None:
        return None
    raw = to_bytes(root)
    if not raw.startswith(b"/"):
        raise ValueError(f"root is a path inside the filesystem, from its top: '/...', not {os.fsdecode(raw)!r}")
    return os.fsdecode(raw.rstrip(b"/") or b"/")


def _loops_backed_by(path: bytes) -> FrozenSet[Tuple[int, int]]:
    """The loop devices whose backing file is ``path`` (canonical), from sysfs."""
    found = set()
    try:
        names = [n for n in os.listdir("/sys/block") if n.startswith("loop")]
    except OSError:
        return frozenset()
    for name in names:
        try:
            with open(f"/sys/block/{name}/loop/backing_file", "rb") as f:
                if f.read().rstrip(b"\n") != path:
                    continue
            with open(f"/sys/block/{name}/dev", "rb") as f:
                major, _, minor = f.read().strip().partition(b":")
            found.add((int(major), int(minor)))
        except (OSError, ValueError):
            continue
    return frozenset(found)


def _matches(wanted: bytes, where: Where, holder: Callable[[bytes], Mount], from_root: bool) -> Callable[[Mount], bool]:
    def exact(m: Mount) -> bool:
        return sources.matches(m, wanted, where, holder, from_root)

    return exact


class _TagMatch:
    """``sources.matches`` of a tag for each record, the answer kept per device; the
    ``Unsupported`` of a device that could not be read kept in ``errors``."""

    def __init__(self, wanted: bytes, where: Where, holder: Callable[[bytes], Mount], from_root: bool) -> None:
        self._match = _matches(wanted, where, holder, from_root)
        self._seen: Dict[Tuple[int, int], bool] = {}
        self.errors: List[Unsupported] = []

    def __call__(self, m: Mount) -> bool:
        device = (m.major, m.minor)
        if device not in self._seen:
            try:
                self._seen[device] = self._match(m)
            except Unsupported as exc:
                self.errors.append(exc)
                self._seen[device] = False
        return self._seen[device]


def needle(
    source: Optional[PathArg],
    fstype: Optional[FsTypes],
    root: Optional[PathArg],
    where: Where,
    holder: Callable[[bytes], Mount],
    from_root: bool = False,
) -> Needle:
    """The needle of ``source``, ``fstype`` and ``root`` (at least one given), asked in
    ``where``; ``holder(path)`` is ``mount_of`` asked there, ``from_root`` as for
    ``sources.matches``. A source that names a block device sifts by its device number; a
    file or directory (a bind of exactly that path) by the device of the mount holding it,
    and a file also by the loop devices it backs; anything else by the text the kernel
    reports. The exact test is ``sources.matches``, the one ``is_mounted`` makes."""
    devnos: Optional[FrozenSet[Tuple[int, int]]] = None
    text: Optional[bytes] = None
    exact: Optional[Callable[[Mount], bool]] = None
    unresolved: Optional[_TagMatch] = None
    if source is not None:
        wanted = to_bytes(source)
        path = sources._as_path(wanted)
        kind: Optional[Tuple[int, Tuple[int, int]]] = None
        if path is not None:
            if from_root and not path.startswith(b"/"):
                path = b"/" + path
            try:
                kind = where.kind(path) if where is not None else sources.kind(path)
            except (FileNotFoundError, NotADirectoryError):
                kind = None
        if path is None and sources._tag(wanted) is not None:
            # No udev link names the tag: only the mounts' own devices can say (is_mounted's
            # reading of superblocks), so every record is built and tested, each device read
            # once; one that cannot be read is an error only if no device has the tag.
            exact = unresolved = _TagMatch(wanted, where, holder, from_root)

        elif path is None or kind is None:
            text = wanted
        elif stat.S_ISBLK(kind[0]):
            if sources.in_btrfs(kind[1]):
                # btrfs gives its mounts an anonymous device (0:N): the device number sifts
                # nothing, the source the kernel reports decides (sources.matches).
                exact = _matches(wanted, where, holder, from_root)

            else:
                devnos = frozenset([kind[1]])
        else:
            top = holder(path)
            devnos = frozenset([(top.major, top.minor)])
            if stat.S_ISREG(kind[0]):
                devnos |= _loops_backed_by(sources._canonical(path, where))

            def exact(m: Mount, top: Mount = top) -> bool:
                return sources.matches(m, wanted, where, lambda _: top, from_root)

    return Needle(devnos, text, _fstypes(fstype), root_text(root), exact, unresolved)
