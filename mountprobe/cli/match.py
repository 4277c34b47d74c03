"""findmnt's filters, with util-linux's meanings: ``-t`` (``match_fstype``, lib/match.c),
``-O`` (``mnt_match_options``, libmount/src/optstr.c) and ``--real``/``--pseudo``
(``mnt_fstype_is_pseudofs``, libmount/src/utils.c), as util-linux 2.38 has them."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence, Tuple

# libmount's pseudofs[] (utils.c, util-linux 2.38): the types --real leaves out and --pseudo keeps.
PSEUDO = frozenset(
    """anon_inodefs apparmorfs autofs bdev binder binfmt_misc bpf cgroup cgroup2 configfs cpuset
    debugfs devfs devpts devtmpfs dlmfs dmabuf drm efivarfs fuse fuse.archivemount fuse.avfsd
    fuse.dumpfs fuse.encfs fuse.gvfs-fuse-daemon fuse.gvfsd-fuse fuse.lxcfs fuse.rofiles-fuse
    fuse.vmware-vmblock fuse.xwmfs fusectl hugetlbfs ipathfs mqueue nfsd none nsfs overlay pipefs
    proc pstore ramfs resctrl rootfs rpc_pipefs securityfs selinuxfs smackfs sockfs spufs sysfs
    tmpfs tracefs vboxsf virtiofs""".split()  # noqa: SIM905
)


def match_fstype(fstype: str, pattern: str) -> bool:
    """findmnt ``-t PATTERN``: a comma list of types; a leading ``no`` negates the whole
    list (``nofoo,bar`` is neither foo nor bar), and ``noX`` in it excludes X. Types are
    compared whole, case-sensitively (``fuse`` is not ``fuse.sshfs``)."""
    negated = pattern.startswith("no")
    items = (pattern[2:] if negated else pattern).split(",")
    for item in items:
        if item[:2] == "no" and item[2:] == fstype:
            return False
        if item == fstype:
            return not negated
    return negated


def positive_types(pattern: str) -> Optional[Tuple[str, ...]]:
    """The types a mount must have one of, where ``pattern`` names them (no ``no`` anywhere):
    for the library's filter, which sifts before decoding; None otherwise."""
    items = pattern.split(",")
    if any(not item or item.startswith("no") for item in items):
        return None
    return tuple(items)


def _option(options: Sequence[str], name: str) -> Optional[str]:
    """The value of option ``name`` in ``options`` ("" for one without a value), or None."""
    for option in options:
        key, eq, value = option.partition("=")
        if key == name:
            return value if eq else ""
    return None


def match_options(options: Sequence[str], pattern: str) -> bool:
    """findmnt ``-O PATTERN``: every item must hold. ``X`` (or ``X=value``): the option is
    there (with that value); ``noX``: it is not; ``+noX``: the option ``noX`` itself is
    there. ``options`` are the items of findmnt's OPTIONS column."""
    for item in pattern.split(","):
        if not item:
            continue
        negated = False
        if item.startswith("+"):
            item = item[1:]
        elif item.startswith("no"):
            negated, item = True, item[2:]
        name, eq, wanted = item.partition("=")
        value = _option(options, name)
        found = value is not None and (not eq or not wanted or value == wanted)
        if found == negated:
            return False
    return True
