"""Adding images to a class folder: whole files or none, a stop keeps what was copied."""
import pytest

from training.reporting import CancelFlag, SilentReporter
from training.results import collect_into_class


class StopAfter(SilentReporter):
    def __init__(self, n):
        super().__init__(CancelFlag())
        self.n = n

    def progress(self, fraction, message=""):
        self.n -= 1
        if self.n == 0:
            self.cancel.set()


def files(folder, n):
    folder.mkdir()
    for i in range(n):
        (folder / f"{i}.png").write_bytes(b"x" * (i + 1))
    return sorted(folder.iterdir())


def test_a_stop_keeps_the_copies_made_and_says_how_many(tmp_path):
    sources = files(tmp_path / "in", 5)
    with pytest.raises(InterruptedError, match="2 of 5 copied"):
        collect_into_class(sources, tmp_path / "data", "cat", StopAfter(2))
    assert sorted(p.name for p in (tmp_path / "data" / "cat").iterdir()) == ["0.png", "1.png"]


def test_a_full_disk_leaves_no_half_file_and_says_where_it_stopped(tmp_path, monkeypatch):
    import errno
    import shutil
    sources, copy = files(tmp_path / "in", 3), shutil.copy2

    def disk_fills_on_the_second(source, target):
        if source.name == "1.png":
            target.write_bytes(b"half")  # what a copy cut short leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        return copy(source, target)

    monkeypatch.setattr(shutil, "copy2", disk_fills_on_the_second)
    with pytest.raises(OSError, match=r"1\.png: No space left on device \(1 of 3 copied before it\)"):
        collect_into_class(sources, tmp_path / "data", "cat")
    assert [p.name for p in (tmp_path / "data" / "cat").iterdir()] == ["0.png"]  # no half file
