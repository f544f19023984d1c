"""``harness.cache.filesystems``: a cache on a network file system is refused."""


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
