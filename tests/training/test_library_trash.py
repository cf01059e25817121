"""The trash of deleted checkpoints: what a crashed session left is pruned after two weeks, but
never the trash of a window still open (its deletes can be undone until it closes)."""
import os
import subprocess
import sys
import time

from training.library import prune_trash


def aged(folder, days):
    folder.mkdir(parents=True)
    (folder / "cats.keras").write_bytes(b"a deleted checkpoint")
    then = time.time() - days * 86400
    os.utime(folder, (then, then))
    return folder


def test_old_trash_of_crashed_sessions_is_pruned_and_a_running_windows_is_kept(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(ended.stdout)  # a process that has ended (its number not reused this instant)
    crashed = aged(tmp_path / f"session-{dead}-0123abcd", 15)
    recent = aged(tmp_path / f"session-{dead}-4567abcd", 3)
    open_window = aged(tmp_path / f"session-{os.getpid()}-89abcdef", 15)
    prune_trash(tmp_path)
    assert not crashed.exists()
    assert (recent / "cats.keras").exists()  # a crash days ago: not yet
    assert (open_window / "cats.keras").exists()  # deleted 15 days ago in a window still open
