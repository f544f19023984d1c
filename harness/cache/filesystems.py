"""Which file system holds a path, and which file systems are network ones (where SQLite's
write-ahead log cannot be shared safely)."""

from __future__ import annotations

from pathlib import Path

MOUNTS = "/proc/mounts"
# SQLite's WAL mode needs shared memory between the processes using a file, which network file
# systems do not give (https://www.sqlite.org/wal.html): a cache there can be corrupted
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "ceph",
                       "fuse.ceph", "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "beegfs", "afs"}


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (from /proc/mounts, the longest mount point
    holding it, the last of those mounted on that point; None where unknown)."""
    try:
        mounts = Path(MOUNTS).read_text().splitlines()
    except OSError:
        return None
    target, best, kind = str(path.resolve()), "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # of two mounts on one point, the later covers
            best, kind = point, fields[2]
    return kind
