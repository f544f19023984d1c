"""``harness.cache.filesystems``: a cache on a network file system is refused."""

from pathlib import Path

import pytest

from harness.cache import CacheError, GenerationCache


def test_a_cache_on_a_network_file_system_is_refused(tmp_path, monkeypatch):
    import harness.cache.filesystems as filesystems

    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path}/shared nfs4 rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNTS", str(mounts))
    GenerationCache(tmp_path / "local" / "generations.sqlite").close()
    with pytest.raises(CacheError, match="on a nfs4 file system.*local disk.*harness.cache merge"):
        GenerationCache(tmp_path / "shared" / "cache" / "generations.sqlite")


def test_the_mount_that_holds_a_path_is_the_longest_point_mounted_last(tmp_path, monkeypatch):
    """Mounted over a local folder, an NFS share is what holds it (/proc/mounts lists the mount
    on top last); a longer mount point inside it is its own."""
    import harness.cache.filesystems as filesystems

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\ntmpfs /data tmpfs rw 0 0\n"
                      "server:/x /data nfs4 rw 0 0\n/dev/sdb1 /data/local xfs rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNTS", str(mounts))
    assert filesystems.filesystem_type(Path("/data/cache")) == "nfs4"
    assert filesystems.filesystem_type(Path("/data/local/cache")) == "xfs"
    assert filesystems.filesystem_type(Path("/home")) == "ext4"
