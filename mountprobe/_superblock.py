"""Labels and UUIDs read from a block device as libblkid reads them: the filesystem's
LABEL and UUID from its superblock, a partition's PARTUUID and PARTLABEL from the partition
table of its disk. ``sources`` asks this module where udev made no ``/dev/disk/by-*`` link
(containers, minimal hosts), as mount(8) and findmnt fall back to libblkid's scan there.

Only the fields that name a device are read, at the offsets util-linux reads them
(libblkid/src/superblocks/{ext,xfs,btrfs,vfat}.c, libblkid/src/partitions/{gpt,dos}.c), and
the text is made as libblkid makes it (superblocks.c ``blkid_probe_set_label`` and
``blkid_probe_set_uuid``, partitions.c ``blkid_partition_gen_uuid``), so that a tag matches
here exactly when ``blkid -p`` prints it.

A device is opened O_RDONLY|O_NONBLOCK|O_CLOEXEC only once it is known to be a block device
(a FIFO or a character device is never opened, nor read), and read in a few small pieces.
A piece is first read with RWF_NOWAIT (from the page cache, never waiting for the device).
One the cache lacks is read by a thread of its own and waited for at most ``WAIT`` seconds
per device, so that a dead device (a lost iSCSI or NBD server, multipath queueing without a
path) answers TimeoutError instead of hanging the caller in the read. (Readahead is no way
around it: the superblock of an ext4 with 1 KiB blocks sits in a page cache folio that the
mounted filesystem holds partly read, which RWF_NOWAIT refuses and POSIX_FADV_WILLNEED
leaves as it is.) Kernels that refuse RWF_NOWAIT on a block device (EOPNOTSUPP) get that
read at once.
"""

from __future__ import annotations

import _thread
import binascii
import errno
import os
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple, Union

    Tags = Dict[bytes, bytes]

WAIT = 10.0  # seconds a device gets to deliver what is asked of it, all pieces together

# The filesystem types (as the kernel names them in mountinfo) whose superblock is read.
_EXT = ("ext2", "ext3", "ext4", "ext4dev")
_FAT = ("vfat", "msdos")
FILESYSTEMS = (*_EXT, "xfs", "btrfs", *_FAT)

_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)


class Device:
    """An open block device, read in bounded pieces within one deadline."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self._until = time.monotonic() + WAIT

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``, fewer at the end of the device."""
        if _RWF_NOWAIT:
            buf = bytearray(size)
            try:
                if os.preadv(self.fd, [buf], offset, _RWF_NOWAIT) == size:
                    return bytes(buf)
            except BlockingIOError:
                pass  # not all in the page cache
            except OSError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise OSError(exc.errno, exc.strerror, self.name) from None
        return self._waited(offset, size)

    def _waited(self, offset: int, size: int) -> bytes:
        """The read that may wait for the device, made by a thread of its own (with a
        descriptor of its own, which it closes), waited for until the deadline. A thread
        left behind ends with its read, or with the process (the page cache waits killably)."""
        fd = os.dup(self.fd)
        done = _thread.allocate_lock()
        done.acquire()
        outcome: List[Union[bytes, OSError]] = []

        def read() -> None:
            pieces: List[bytes] = []
            try:
                got = 0
                while got < size:
                    piece = os.pread(fd, size - got, offset + got)
                    if not piece:
                        break
                    pieces.append(piece)
                    got += len(piece)
                outcome.append(b"".join(pieces))
            except OSError as exc:
                outcome.append(exc)
            finally:
                os.close(fd)
                done.release()

        _thread.start_new_thread(read, ())
        if not done.acquire(True, max(self._until - time.monotonic(), 0)):
            raise TimeoutError(errno.ETIMEDOUT, f"the device did not answer within {WAIT:g} s", self.name)
        if isinstance(outcome[0], OSError):
            raise OSError(outcome[0].errno, outcome[0].strerror, self.name)
        return outcome[0]


def open_device(path: bytes, rdev: Tuple[int, int], reopen: Optional[int] = None) -> Device:
    """``path`` opened to read, once it is the block device ``rdev`` (ENOTBLK, or ENXIO when
    another device is there now). With ``reopen``, an O_PATH descriptor of it (resolved in
    another mount namespace's root) is opened instead, through /proc/self/fd."""
    name = os.fsdecode(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if reopen is not None:
        st = os.fstat(reopen)
        _check_block(st, rdev, name)
        fd = os.open(b"/proc/self/fd/%d" % reopen, flags)
    else:
        _check_block(os.stat(path), rdev, name)
        fd = os.open(path, flags)
    try:
        _check_block(os.fstat(fd), rdev, name)  # what was opened, should the name have moved
    except BaseException:
        os.close(fd)
        raise
    return Device(fd, name)


def _check_block(st: os.stat_result, rdev: Tuple[int, int], name: str) -> None:
    if not stat.S_ISBLK(st.st_mode):
        raise OSError(errno.ENOTBLK, "not a block device (not read)", name)
    if (os.major(st.st_rdev), os.minor(st.st_rdev)) != rdev:
        raise OSError(errno.ENXIO, f"no longer the device {rdev[0]}:{rdev[1]}", name)


# -- text as libblkid makes it ------------------------------------------------------------


def _label(raw: bytes) -> Optional[bytes]:
    """blkid_probe_set_label: up to the first NUL, trailing white space off; none if empty."""
    text = raw.split(b"\0", 1)[0].rstrip(b" \t\n\v\f\r")
    return text or None


def _uuid(raw: bytes) -> Optional[bytes]:
    """blkid_unparse_uuid of 16 bytes in disk order, lowercase; none when all zero."""
    if not any(raw):
        return None
    h = raw.hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:32]))


def _guid(raw: bytes) -> Optional[bytes]:
    """An EFI GUID (first three fields little-endian) as libblkid prints it (swap_efi_guid)."""
    return _uuid(raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:16])


def _tags(label: Optional[bytes], uuid: Optional[bytes]) -> Tags:
    found: Tags = {}
    if label is not None:
        found[b"LABEL"] = label
    if uuid is not None:
        found[b"UUID"] = uuid
    return found


def _le(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


# -- filesystems ---------------------------------------------------------------------------


def filesystem_tags(dev: Device, fstype: str) -> Tags:
    """LABEL and UUID of the ``fstype`` filesystem on ``dev`` (those it has), ValueError when
    its superblock is not where that type keeps it, LookupError for a type not read here."""
    if fstype in _EXT:
        return _ext(dev)
    if fstype == "xfs":
        return _xfs(dev)
    if fstype == "btrfs":
        return _btrfs(dev)
    if fstype in _FAT:
        return _vfat(dev)
    raise LookupError(fstype)


def _ext(dev: Device) -> Tags:
    # ext.c: struct ext2_super_block at 1 KiB; s_magic 0xEF53 at 0x38, s_uuid at 0x68,
    # s_volume_name[16] at 0x78.
    sb = dev.read(0x400, 0x88)
    if len(sb) < 0x88 or sb[0x38:0x3A] != b"\x53\xef":
        raise ValueError("no ext2/3/4 superblock at 1 KiB")
    label = _label(sb[0x78:0x88]) if sb[0x78] else None
    return _tags(label, _uuid(sb[0x68:0x78]))


def _xfs(dev: Device) -> Tags:
    # xfs.c: struct xfs_super_block at 0; "XFSB", sb_uuid at 32, sb_fname[12] at 108.
    sb = dev.read(0, 120)
    if len(sb) < 120 or sb[:4] != b"XFSB":
        raise ValueError("no xfs superblock at 0")
    label = _label(sb[108:120]) if sb[108] else None
    return _tags(label, _uuid(sb[32:48]))


def _btrfs(dev: Device) -> Tags:
    # btrfs.c: struct btrfs_super_block at 64 KiB; fsid at 32 (UUID; dev_item.uuid at 267
    # is UUID_SUB, which names one device of the filesystem, no tag), magic "_BHRfS_M" at
    # 64, label[256] at 299. (A zoned device keeps it elsewhere: ValueError.)
    sb = dev.read(0x10000, 299 + 256)
    if len(sb) < 299 + 256 or sb[64:72] != b"_BHRfS_M":
        raise ValueError("no btrfs superblock at 64 KiB")
    label = _label(sb[299:555]) if sb[299] else None
    return _tags(label, _uuid(sb[32:48]))


def _vfat(dev: Device) -> Tags:
    # vfat.c probe_vfat: LABEL is the volume-id entry of the root directory (the boot
    # sector's label is LABEL_FATBOOT, no tag); UUID is the serial number, printed
    # "%02X%02X-%02X%02X" from its bytes 3, 2, 1, 0.
    bs = dev.read(0, 512)
    if len(bs) < 512:
        raise ValueError("no FAT boot sector at 0")
    sector = _le(bs, 0x0B, 2)
    reserved = _le(bs, 0x0E, 2)
    fats = bs[0x10]
    cluster = bs[0x0D]
    if sector not in (512, 1024, 2048, 4096) or not fats or not reserved or not cluster:
        raise ValueError("no FAT boot sector at 0")
    fat16_length = _le(bs, 0x16, 2)
    label: Optional[bytes] = None
    serial: Optional[bytes] = None
    if fat16_length:  # FAT12/16: a fixed root directory after the FATs
        root = (reserved + fat16_length * fats) * sector
        label = _fat_label(dev, root, _le(bs, 0x11, 2))
        if bs[0x26] in (0x28, 0x29):
            serial = bs[0x27:0x2B]
    else:  # FAT32: the root directory is a cluster chain, followed as libblkid does
        fat32_length = _le(bs, 0x24, 4)
        if not fat32_length:
            raise ValueError("no FAT boot sector at 0")
        data_start = reserved + fat32_length * fats
        entries = fat32_length * sector // 4
        following = _le(bs, 0x2C, 4)
        for _ in range(99):  # libblkid's maxloop
            if not 0 < following < entries:
                break
            at = (data_start + (following - 2) * cluster) * sector
            label = _fat_label(dev, at, cluster * sector // 32)
            if label is not None:
                break
            following = _le(dev.read(reserved * sector + following * 4, 4), 0, 4) & 0x0FFFFFFF
        serial = bs[0x43:0x47]
        fsinfo = _le(bs, 0x30, 2)
        if fsinfo:  # libblkid refuses a FAT32 whose FSInfo sector has other signatures
            info = dev.read(fsinfo * sector, 488)
            if info[:4] not in (b"RRaA", b"RRdA", b"\0\0\0\0") or info[484:488] not in (b"rrAa", b"\0\0\0\0"):
                return {}
    uuid = None
    if serial is not None and any(serial):
        uuid = b"%02X%02X-%02X%02X" % (serial[3], serial[2], serial[1], serial[0])
    return _tags(label, uuid)


def _fat_label(dev: Device, offset: int, count: int) -> Optional[bytes]:
    """vfat.c search_fat_label: the first volume-id entry of ``count`` directory entries."""
    done = 0
    while done < count:
        n = min(count - done, 2048)  # 64 KiB at a time: the label is usually the first entry
        block = dev.read(offset + done * 32, n * 32)
        for i in range(0, len(block) - 31, 32):
            entry = block[i : i + 32]
            if entry[0] == 0x00:
                return None
            attr = entry[11]
            if entry[0] == 0xE5 or entry[20:22] != b"\0\0" or entry[26:28] != b"\0\0" or attr & 0x3F == 0x0F:
                continue
            if attr & 0x18 == 0x08:
                name = (b"\xe5" + entry[1:11]) if entry[0] == 0x05 else entry[:11]
                return _label(name)
        if len(block) < n * 32:
            return None
        done += n
    return None


# -- partitions ----------------------------------------------------------------------------


def partition_tags(disk: Device, sector: int, sectors: int, start: int, size: int, number: int) -> Tags:
    """PARTUUID and PARTLABEL of the partition ``number`` that starts at ``start`` and spans
    ``size`` (512-byte units, as sysfs gives them) on ``disk`` of ``sectors`` sectors of
    ``sector`` bytes: from its GPT entry (matched by start and size, as libblkid's
    blkid_partlist_devno_to_partition does), else "SIGNATURE-NN" from an MBR disk
    signature (dos.c). ValueError when the disk has neither."""
    mbr = disk.read(0, 512)
    valid_mbr = len(mbr) == 512 and mbr[510:512] == b"\x55\xaa"
    protective = valid_mbr and any(mbr[446 + 16 * i + 4] == 0xEE for i in range(4))
    if protective:
        for lba in (1, sectors - 1):  # gpt.c: the primary header, else the backup
            found = _gpt_entry(disk, sector, sectors, lba, start, size)
            if found is not None:
                return found
        raise ValueError("no valid GPT header (primary or backup) behind the protective MBR")
    if valid_mbr:
        signature = _le(mbr, 440, 4)
        return {b"PARTUUID": b"%08x-%02x" % (signature, number)} if signature else {}
    raise ValueError("no GPT or MBR partition table")


def _gpt_entry(disk: Device, sector: int, sectors: int, lba: int, start: int, size: int) -> Optional[Tags]:
    """gpt.c get_gpt_header and probe_gpt_pt: None for a header that is not valid."""
    h = disk.read(lba * sector, sector)
    header_size = _le(h, 12, 4)
    if h[:8] != b"EFI PART" or not 92 <= header_size <= sector:
        return None
    if binascii.crc32(h[:16] + b"\0\0\0\0" + h[20:header_size]) != _le(h, 16, 4) or _le(h, 24, 8) != lba:
        return None
    first, last = _le(h, 40, 8), _le(h, 48, 8)
    if last < first or first > sectors - 1 or last > sectors - 1 or first < lba < last:
        return None
    count, entry_size = _le(h, 80, 4), _le(h, 84, 4)
    if entry_size != 128 or not 0 < count * entry_size < 1 << 20:
        return None
    entries = disk.read(_le(h, 72, 8) * sector, count * entry_size)
    if binascii.crc32(entries) != _le(h, 88, 4):
        return None
    scale = sector // 512
    for i in range(0, len(entries), 128):
        e = entries[i : i + 128]
        first_lba, last_lba = _le(e, 32, 8), _le(e, 40, 8)
        if not any(e[:16]) or first_lba < first or last_lba > last:
            continue
        if first_lba * scale == start and (last_lba - first_lba + 1) * scale == size:
            found: Tags = {}
            uuid = _guid(e[16:32])
            if uuid is not None:
                found[b"PARTUUID"] = uuid
            # blkid_partition_set_utf8name: UTF-16LE up to a NUL, trailing white space off.
            name = e[56:128].decode("utf-16-le", "surrogatepass").split("\0", 1)[0]
            label = _label(name.encode("utf-8", "surrogatepass"))
            if label is not None:
                found[b"PARTLABEL"] = label
            return found
    return {}
