"""dev.py, the two README commands' entry: a command runs in the caller's folder (file names
given to `run` or `train` are the caller's) and Ctrl+C is the child's to handle."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_command_runs_in_the_callers_folder_with_the_project_importable(tmp_path):
    (tmp_path / "training.py").write_text("raise SystemExit('the caller folder shadowed us')\n")
    code = ("import os, sys, dev; sys.exit(dev.run_child([sys.executable, '-c', "
            "'import os, training; print(os.getcwd()); print(training.__file__)'], None))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    cwd, package = done.stdout.split()
    assert Path(cwd) == tmp_path  # `dev.py run cat.jpg` finds the caller's cat.jpg
    assert Path(package).parent == ROOT / "training"  # not the caller's training.py


@pytest.mark.skipif(os.name != "posix", reason="a process group and SIGINT, as a terminal sends")
def test_ctrl_c_is_left_to_the_child_which_ends_as_it_chooses(tmp_path):
    """`dev.py train` and Ctrl+C: the run stops at its next batch and saves (seconds, not the
    0.25 s subprocess.call allows before it kills the child), and dev.py passes on its exit."""
    child = ("import signal, sys, time\n"
             "asked = []\n"
             "signal.signal(signal.SIGINT, lambda *a: asked.append(1))\n"
             "print('ready', flush=True)\n"
             "while not asked:  # (not signal.pause(): a Ctrl+C before it would be missed)\n"
             "    time.sleep(0.01)\n"
             "time.sleep(1.0)  # finishing a batch, saving the best epoch\n"
             "print('saved whole', flush=True)\n"
             "sys.exit(130)\n")
    code = f"import sys, dev; sys.exit(dev.run_child([sys.executable, '-c', {child!r}], None))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl+C: both processes get it
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "saved whole" in out and proc.returncode == 130
    assert "Traceback" not in err


@pytest.mark.skipif(os.name != "posix" or not shutil.which("unzip"),
                    reason="symbolic links, and Info-ZIP's unzip to unpack them as a user would")
def test_the_macos_download_keeps_the_apps_linked_folders(tmp_path, monkeypatch):
    """PyInstaller's .app keeps models/ and resources/ in Contents/Resources and links them into
    Contents/Frameworks, where the app looks: the zip stored each link as an empty folder, and
    the unpacked app had no bundled checkpoint, icons or style sheet."""
    monkeypatch.syspath_prepend(str(ROOT))
    import dev

    app = tmp_path / "dist" / "PixelClassifier.app" / "Contents"
    (app / "Resources" / "models").mkdir(parents=True)
    (app / "Resources" / "models" / "cifar10.keras").write_bytes(b"weights")
    (app / "MacOS").mkdir()
    (app / "MacOS" / "PixelClassifier").write_bytes(b"#!/bin/sh\n")
    (app / "MacOS" / "PixelClassifier").chmod(0o755)
    (app / "Frameworks").mkdir()
    (app / "Frameworks" / "models").symlink_to("../Resources/models")
    (app / "Frameworks" / "lib.dylib").write_bytes(b"x" * 5000)
    (app / "Frameworks" / "Python").symlink_to("lib.dylib")
    monkeypatch.setattr(sys, "platform", "darwin")
    archive = dev.write_archive(app.parent, tmp_path / "dist" / "PixelClassifier-1-macos-arm64")
    assert archive.name == "PixelClassifier-1-macos-arm64.zip"
    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", str(archive), "-d", str(unpacked)], check=True)
    frameworks = unpacked / "PixelClassifier.app" / "Contents" / "Frameworks"
    assert (frameworks / "models").is_symlink()
    assert (frameworks / "models" / "cifar10.keras").read_bytes() == b"weights"
    assert (frameworks / "Python").is_symlink()  # a link, not a second copy of the library
    assert os.access(unpacked / "PixelClassifier.app" / "Contents" / "MacOS" / "PixelClassifier",
                     os.X_OK)
