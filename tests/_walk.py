"""A seeded random walk over mount(2) operations under one directory, and the check that
every public query on every path there equals the kernel's own answer after each step.

The operations are data (tuples), so a failing walk can be replayed, from scratch, in a
fresh mount namespace, and shrunk to a short sequence that still fails (``shrink``).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from _child import Hung, run
from _ns import (
    MNT_DETACH,
    MS_BIND,
    MS_MOVE,
    MS_PRIVATE,
    MS_REC,
    MS_SHARED,
    MS_SLAVE,
    MS_UNBINDABLE,
    enter_private_namespace,
    mount,
    tmpfs,
    umount,
)
from _oracle import FIELDS, Entry, all_unique_ids, table

import mountprobe
from mountprobe import api

# The nasty alphabet: space, tab, newline, backslash, "#", non-UTF-8 and non-ASCII bytes.
NAMES = [b"a", b"sp ace", b"t\tab", b"n\nl", b"back\\slash", b"#hash", b"\xff\xfe", "ü☃".encode()]
DIRS = [n for n in NAMES] + [NAMES[i] + b"/" + NAMES[(i * 3 + 1) % len(NAMES)] for i in range(len(NAMES))]
FILES = [b"f " + n.replace(b"/", b"") for n in NAMES[:3]]
LINKS = {b"link to a": b"a", b"link\nto dir": DIRS[-1], b"dangling": b"nowhere"}  # name: relative target
FLAGS = {"shared": MS_SHARED, "slave": MS_SLAVE, "private": MS_PRIVATE, "unbindable": MS_UNBINDABLE}
MOST = 120  # mounts under the root before the walk resets (recursive shared binds multiply)
Op = Tuple[Any, ...]


def random_op(rng: random.Random) -> Op:
    def d() -> bytes:
        return rng.choice(DIRS)

    kind = rng.choices(
        ["mkdir", "tmpfs", "bind", "rbind", "filebind", "move", "umount", "lazy", "propagation", "recursive"],
        [10, 14, 10, 4, 4, 5, 10, 5, 8, 3],
    )[0]
    if kind in ("mkdir", "tmpfs", "umount", "lazy"):
        return (kind, d())
    if kind in ("bind", "rbind", "move"):
        return (kind, d(), d())
    if kind == "filebind":
        return (kind, rng.choice(FILES), rng.choice(FILES))
    return (kind, d(), rng.choice(sorted(FLAGS)))


def prepare(root: bytes) -> None:
    """A fresh tmpfs at ``root`` with the pool of directories and files."""
    tmpfs(root, "walkroot")
    for d in DIRS:
        os.makedirs(root + b"/" + d, exist_ok=True)
    for f in FILES:
        with open(root + b"/" + f, "wb"):
            pass
    for link, target in LINKS.items():
        os.symlink(target, root + b"/" + link)


def apply(root: bytes, op: Op, step: int) -> bool:
    """Carry out ``op`` under ``root``; False when the kernel refused it."""
    kind, *args = op
    p = [root + b"/" + a for a in args if isinstance(a, bytes)]
    try:
        if kind == "mkdir":
            os.makedirs(p[0], exist_ok=True)
        elif kind == "tmpfs":
            tmpfs(p[0], f"w{step}")
        elif kind in ("bind", "rbind", "filebind"):
            mount(p[0], p[1], None, MS_BIND | (MS_REC if kind == "rbind" else 0))
        elif kind == "move":
            mount(p[0], p[1], None, MS_MOVE)
        elif kind in ("umount", "lazy"):
            umount(p[0], MNT_DETACH if kind == "lazy" else 0)
        elif kind in ("propagation", "recursive"):
            mount(None, p[0], None, FLAGS[args[1]] | (MS_REC if kind == "recursive" else 0))
        elif kind == "reset":
            for e in reversed(table()):
                if e.mountpoint.startswith(os.fsdecode(root) + "/"):
                    umount(os.fsencode(e.mountpoint), MNT_DETACH)
    except OSError:
        return False
    return True


def under(root: bytes) -> List[Entry]:
    top = os.fsdecode(root) + "/"
    return [e for e in table() if e.mountpoint.startswith(top)]


def _kernel(path: bytes, follow: bool = True) -> Tuple[Optional[int], Optional[bytes], Optional[OSError]]:
    """(mount id from fdinfo, canonical path, or the error) for ``path``, without mountprobe."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        return None, None, exc
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            mnt_id = int(next(line for line in f if line.startswith(b"mnt_id:")).split()[1])
        return mnt_id, os.readlink(f"/proc/self/fd/{fd}".encode()), None
    finally:
        os.close(fd)


def _fields(m: mountprobe.Mount) -> Dict[str, Any]:
    return {f: getattr(m, f) for f in FIELDS}


def _tree_below(entries: List[Entry], holder: int, where: str) -> List[int]:
    """The kernel's subtree answer: the tree under the stack bottom of ``holder``, by parent
    ids, filtered by mount point (the mounts reachable below ``where``)."""
    ids = {e.id: e for e in entries}
    bottom = ids[holder]
    while bottom.parent_id in ids and ids[bottom.parent_id].mountpoint == bottom.mountpoint:
        bottom = ids[bottom.parent_id]
    tree = {bottom.id}
    for _ in range(len(entries)):
        grown = {e.id for e in entries if e.parent_id in tree} - tree
        if not grown:
            break
        tree |= grown
    prefix = where.rstrip("/") + "/"
    return sorted(e.id for e in entries if e.id in tree and (e.mountpoint == where or e.mountpoint.startswith(prefix)))


def check(root: bytes, previous: Sequence[mountprobe.Mount] = (), with_tools: bool = False) -> List[str]:
    """Every public query on every path under ``root`` against the kernel; the differences."""
    wrong: List[str] = []
    entries = table()
    by_id = {e.id: e for e in entries}
    listed = mountprobe.list_mounts()
    if [_fields(m) for m in listed] != [dict(e) for e in entries]:
        wrong.append("list_mounts differs from mountinfo")
    paths = [root, *(root + b"/" + p for p in [*DIRS, *FILES, *LINKS])]
    for path in paths:
        answers = {True: _kernel(path), False: _kernel(path, False)}
        for name, question in _QUESTIONS:
            mnt_id, canonical, error = answers["nofollow" not in name]
            try:
                got: Any = question(path)
            except OSError as exc:
                if error is None or exc.errno != error.errno:
                    wrong.append(f"{name}({path!r}): raised {exc!r}, kernel: {error!r}")
                continue
            if error is not None:
                wrong.append(f"{name}({path!r}) = {got!r}, kernel: {error!r}")
                continue
            assert mnt_id is not None and canonical is not None
            want = _expected(name.split(" [")[0], path, mnt_id, canonical, by_id, entries)
            if got != want:
                wrong.append(f"{name}({path!r}) = {got!r}, kernel: {want!r}")
        mnt_id, canonical, error = answers[True]
        if with_tools and error is None:
            wrong += _tools(path, mountprobe.is_mountpoint(path), by_id, mnt_id, canonical)
    alive: Optional[set[int]] = None
    for m in previous:  # a moved mount is the same mount; a new one at the same place is not
        if m.unique_id is not None:  # the kernel's own list of unique ids (listmount, 6.8)
            alive = all_unique_ids() if alive is None else alive
            want_alive = m.unique_id in alive
        else:  # before 6.8 (no unique ids) the legacy id and the mount's identity in the table
            now = dict(by_id[m.id]) if m.id in by_id else None
            want_alive = now is not None and all(now[f] == getattr(m, f) for f in _IDENTITY)
        if mountprobe.still_mounted(m) != want_alive:
            wrong.append(f"still_mounted({m.mountpoint!r}, id {m.id}) != {want_alive}")
    return wrong


# What a record without unique ids (before 6.8) is recognised by, with its legacy id, as
# mountprobe.strategies.mountinfo.still_mounted documents: a moved mount is then taken for
# gone, and an identical re-mount (legacy id and device number reused) for the same one.
_IDENTITY = ("parent_id", "major", "minor", "root", "mountpoint", "fstype", "source", "super_options")


def _expected(
    name: str, path: bytes, mnt_id: int, canonical: bytes, by_id: Dict[int, Entry], entries: List[Entry]
) -> Any:
    holder = by_id[mnt_id]
    at_root = holder.mountpoint == os.fsdecode(canonical)
    if name in ("is_mountpoint", "is_mountpoint(nofollow)"):
        return at_root
    if name == "mount_root":
        return holder.mountpoint
    if name == "is_mounted(source)":
        return at_root and holder.source == "walkroot"
    if name == "is_mountpoint(bind=False)":
        if not at_root:
            return False
        return os.stat(canonical).st_dev != os.stat(os.path.dirname(canonical)).st_dev
    if name in ("mount_of", "mount_at", "mount_of(nofollow)"):
        return dict(holder) if name != "mount_at" or at_root else None
    if name == "mounts_under":
        return _tree_below(entries, mnt_id, os.fsdecode(canonical))
    if name == "is_mounted(tmpfs)":
        return at_root and holder.fstype == "tmpfs"
    raise AssertionError(name)


def _tools(
    path: bytes, ours: bool, by_id: Dict[int, Entry], mnt_id: Optional[int], canonical: Optional[bytes]
) -> List[str]:
    """mountpoint(1) where installed: it may differ from us only where it also differs from
    the kernel (util-linux matches mount point strings, and a covered one still matches)."""
    try:
        status = subprocess.run(["mountpoint", "-q", path], check=False).returncode
    except FileNotFoundError:
        return []
    theirs = status == 0
    wrong = []
    if theirs != ours and mnt_id is not None and canonical is not None:
        kernel = by_id[mnt_id].mountpoint == os.fsdecode(canonical)
        if kernel != ours:
            wrong.append(f"is_mountpoint({path!r}) = {ours}, mountpoint(1) and the kernel say {theirs}")
    stacked = canonical is not None and sum(e.mountpoint == os.fsdecode(canonical) for e in by_id.values()) > 1
    if ours and not stacked:
        # findmnt --submounts: the mount at the path and the tree below it.
        argv: List[Union[str, bytes]] = ["findmnt", "--submounts", "--mountpoint", path, "-n", "-r", "-o", "ID"]
        listed = subprocess.run(argv, capture_output=True, check=False).stdout
        mine = {m.id for m in mountprobe.mounts_under(path, include_self=True)}
        if {int(n) for n in listed.split()} != mine:
            wrong.append(f"mounts_under({path!r}) = {sorted(mine)}, findmnt --submounts: {listed.split()}")
    return wrong


def _record(m: Optional[mountprobe.Mount]) -> Optional[Dict[str, Any]]:
    return None if m is None else _fields(m)


_QUESTIONS: List[Tuple[str, Callable[[bytes], Any]]] = [
    ("is_mountpoint", mountprobe.is_mountpoint),
    ("is_mountpoint(bind=False)", lambda p: mountprobe.is_mountpoint(p, bind=False)),
    ("mount_of", lambda p: _record(mountprobe.mount_of(p))),
    ("mount_at", lambda p: _record(mountprobe.mount_at(p))),
    ("mounts_under", lambda p: sorted(m.id for m in mountprobe.mounts_under(p, include_self=True))),
    ("is_mounted(tmpfs)", lambda p: mountprobe.is_mounted(p, fstype="tmpfs")),
    ("is_mounted(source)", lambda p: mountprobe.is_mounted(p, source="walkroot")),
    ("mount_root", mountprobe.mount_root),
    ("is_mountpoint(nofollow)", lambda p: mountprobe.is_mountpoint(p, follow_symlinks=False)),
    ("mount_of(nofollow)", lambda p: _record(mountprobe.mount_of(p, follow_symlinks=False))),
]


def _asking(question: str, strategy: Callable[..., Any]) -> Callable[[bytes], Any]:
    if question == "is_mountpoint":
        return lambda p: strategy(p, True)
    if question == "mount_of":
        return lambda p: _record(strategy(p, True, False))
    return lambda p: sorted(m.id for m in strategy(p, True, False))


# The fallback strategies answer the same questions; each is asked too.
for _question in ("is_mountpoint", "mount_of", "mounts_under"):
    for _name, _strategy in api.strategies(_question)[1:]:
        _QUESTIONS.append((f"{_question} [{_name}]", _asking(_question, _strategy)))


def walk(root: bytes, seed: int, steps: int, tools_every: int = 0) -> Tuple[List[Op], List[str]]:
    """Random operations from ``seed``, checked after each; stops at the first difference:
    (the operations so far, the differences)."""
    rng = random.Random(seed)
    ops: List[Op] = []
    previous: List[mountprobe.Mount] = []
    for step in range(steps):
        op: Op = ("reset",) if len(under(root)) > MOST else random_op(rng)
        ops.append(op)
        apply(root, op, step)
        wrong = check(root, previous, with_tools=bool(tools_every) and step % tools_every == 0)
        if wrong:
            return ops, wrong
        previous = mountprobe.mounts_under(root)
    return ops, []


def replay_fails(root: bytes, ops: Sequence[Op], deadline: float = 60.0) -> bool:
    """Does ``ops``, replayed from scratch in a fresh mount namespace, end in a difference?"""

    def replay() -> bool:
        umount(root, MNT_DETACH)
        prepare(root)
        for step, op in enumerate(ops):
            apply(root, op, step)
        return bool(check(root))

    try:
        return run(replay, deadline, enter_private_namespace)
    except Hung:
        return False
    except Exception:  # a replay that cannot even run fails
        return True


def shrink(root: bytes, ops: List[Op], budget: float = 120.0) -> List[Op]:
    """A shorter sequence that still fails (delta debugging: drop chunks, then single ops,
    while the budget lasts)."""
    until = time.monotonic() + budget
    if not replay_fails(root, ops):
        return ops  # the failure needs the checks of earlier steps, or is not repeatable
    chunk = max(1, len(ops) // 2)
    while chunk >= 1 and time.monotonic() < until:
        i = 0
        while i < len(ops) and time.monotonic() < until:
            candidate = ops[:i] + ops[i + chunk :]
            if candidate and replay_fails(root, candidate):
                ops = candidate
            else:
                i += chunk
        chunk //= 2
    return ops


def describe(ops: Sequence[Op]) -> str:
    return "\n".join(f"  {i}: {op!r}" for i, op in enumerate(ops))
