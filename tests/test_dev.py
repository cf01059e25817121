"""dev.py, the two README commands' entry: a command runs in the caller's folder (file names
given to `run` or `train` are the caller's), Ctrl+C and `kill` reach the child, and `.venv` is
made anew unless it was finished for the current lock."""
import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

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


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM and SIGHUP as `kill PID` sends them")
@pytest.mark.parametrize("sent", ["SIGTERM", "SIGHUP"])
def test_kill_sent_to_dev_py_alone_ends_the_child_as_if_typed_directly(tmp_path, sent):
    """`kill PID` or an IDE's stop button reaches dev.py only: the app or training run went on
    without it (an orphan still holding its window and run)."""
    child = ("import signal, sys, time\n"
             f"signal.signal(signal.{sent}, lambda *a: (print('saved, ending', flush=True),"
             " sys.exit(3)))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")
    code = f"import sys, dev; sys.exit(dev.run_child([sys.executable, '-c', {child!r}], None))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            # as from a terminal: under `nohup` (the suite run in the background)
                            # SIGHUP comes ignored, and dev.py rightly leaves it so
                            preexec_fn=lambda: signal.signal(getattr(signal, sent), signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(getattr(signal, sent))  # to dev.py alone, not its process group
        assert proc.wait(timeout=60) == 3  # the child's own exit status
        assert proc.stdout.read().strip() == "saved, ending"
    finally:
        with contextlib.suppress(ProcessLookupError):  # (an orphan child, were it left running)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


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


@pytest.fixture
def project(tmp_path, monkeypatch):
    """dev.py pointed at a throw-away project whose venv building and pip are stand-ins: the
    stand-in pip records its commands and whether `.venv` still had a stamp when it ran."""
    monkeypatch.syspath_prepend(str(ROOT))
    import dev

    (tmp_path / "requirements.txt").write_text("keras==3.15.1\n")
    monkeypatch.setattr(dev, "LOCK", tmp_path / "requirements.txt")
    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(dev, "STAMP", tmp_path / ".venv" / "requirements.sha256")
    monkeypatch.setattr(dev, "venv_works", lambda python: True)
    made = SimpleNamespace(dev=dev, venvs=0, commands=[], stamped_during_pip=[], imports=0)

    class Builder:
        def __init__(self, **options):
            pass

        def create(self, folder):
            made.venvs += 1
            dev.venv_python().parent.mkdir(parents=True)
            dev.venv_python().write_text("")

    def run(command, **options):
        made.commands.append(command)
        if "install" in command:
            made.stamped_during_pip.append(dev.STAMP.exists())
            (dev.VENV / "lib" / "tensorflow").mkdir(parents=True, exist_ok=True)
            return subprocess.CompletedProcess(command, 0)
        return subprocess.CompletedProcess(command, made.imports, "", "oneDNN notice\nModule"
                                           "NotFoundError: No module named 'tensorflow.python'")

    monkeypatch.setattr(dev.venv, "EnvBuilder", Builder)
    monkeypatch.setattr(dev, "subprocess", SimpleNamespace(
        run=run, CalledProcessError=subprocess.CalledProcessError))
    return made


@pytest.mark.parametrize("stamp", [None, "lock changed"])
def test_a_venv_not_finished_for_this_lock_is_made_anew_not_topped_up(project, stamp):
    """Ctrl+C, a kill or a full disk while tensorflow unpacked left a .venv pip calls complete
    (every later launch: "No module named 'tensorflow.python'"); a changed lock kept packages
    it dropped, which CI would not have."""
    dev = project.dev
    partly = dev.VENV / "lib" / "site-packages" / "tensorflow_cpu-2.21.0.dist-info"
    partly.mkdir(parents=True)
    (partly / "RECORD").write_text("tensorflow/python/__init__.py\n")
    dev.venv_python().parent.mkdir(parents=True)
    dev.venv_python().write_text("")  # (its python runs: venv_works says so)
    if stamp:
        dev.STAMP.write_text(stamp + "\n")
    assert dev.ensure_venv() == dev.venv_python()
    assert not partly.parent.exists()  # the half-written packages went with the old venv
    assert project.venvs == 1 and project.stamped_during_pip == [False]
    assert "import tensorflow, keras" in project.commands[-1][-1]  # checked before stamping
    want = hashlib.sha256(dev.LOCK.read_bytes()).hexdigest()
    assert dev.STAMP.read_text().strip() == want
    assert dev.ensure_venv() == dev.venv_python() and project.venvs == 1  # finished: kept


def test_a_venv_whose_packages_do_not_import_stays_unfinished(project):
    """pip's word is not enough: the stamp comes only once tensorflow, keras and PySide6 import,
    so the next launch makes it anew instead of failing in the app."""
    project.imports = 1
    with pytest.raises(SystemExit) as failed:
        project.dev.ensure_venv()
    assert "No module named 'tensorflow.python'" in str(failed.value)
    assert "\n" not in str(failed.value) and not project.dev.STAMP.exists()


def test_a_folder_where_venv_cannot_be_made_gets_one_line_naming_it(project, tmp_path,
                                                                   monkeypatch):
    """A read-only project folder: a 15-line traceback from venv instead of what went wrong."""
    dev = project.dev
    (tmp_path / "read-only").write_text("")  # a file where the folder should be: mkdir fails
    monkeypatch.setattr(dev, "VENV", tmp_path / "read-only" / ".venv")
    monkeypatch.setattr(dev, "STAMP", dev.VENV / "requirements.sha256")
    with pytest.raises(SystemExit) as failed:
        dev.ensure_venv()
    message = str(failed.value)
    assert message.startswith(f"error: could not make {dev.VENV}: ") and "\n" not in message


def test_a_second_launch_waits_for_the_first_set_up_then_uses_it(project, monkeypatch):
    """Two launches during the first set-up: the second wiped .venv while the first bootstrapped
    pip, and the first died with a traceback."""
    dev = project.dev
    building, finish, waiting = threading.Event(), threading.Event(), threading.Event()
    builds = []

    def build_venv(python, want):  # the first launch's set-up, held until the second waits
        builds.append(threading.current_thread().name)
        building.set()
        assert finish.wait(timeout=60)
        python.parent.mkdir(parents=True)
        python.write_text("")
        dev.STAMP.write_text(want + "\n")

    class Said(io.StringIO):
        def write(self, text):
            if "Waiting for another dev.py" in text:
                waiting.set()
            return super().write(text)

    monkeypatch.setattr(dev, "build_venv", build_venv)
    monkeypatch.setattr(sys, "stdout", Said())
    results = {}
    launches = [threading.Thread(target=lambda name=name: results.update({name: dev.ensure_venv()}),
                                 name=name) for name in ("first", "second")]
    launches[0].start()
    assert building.wait(timeout=60)
    launches[1].start()
    try:
        assert waiting.wait(timeout=30)
    finally:
        finish.set()
        for launch in launches:
            launch.join(timeout=60)
    assert builds == ["first"]
    assert results == {"first": dev.venv_python(), "second": dev.venv_python()}


def lock_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_making_the_lock_keeps_the_pins_for_other_platforms():
    """`dev.py lock` freezes what pip installed on Linux: Windows-only dependencies (colorama
    for pytest, pefile and pywin32-ctypes for PyInstaller) would leave the lock again."""
    sys.path.insert(0, str(ROOT))
    import dev

    locked = lock_lines((ROOT / "requirements.txt").read_text())
    here = [line for line in locked if ";" not in line] + ["tensorflow_cpu==2.21.0"]
    made = dev.lock_text("\n".join(sorted(here, key=str.lower)) + "\n",
                         (ROOT / "requirements.in").read_text())
    assert sorted(lock_lines(made)) == sorted(locked)


def test_the_lock_pins_what_its_packages_need_on_windows_and_macos():
    """pip installed the unpinned latest colorama, pefile and pywin32-ctypes on Windows."""
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    locked = [Requirement(line) for line in lock_lines((ROOT / "requirements.txt").read_text())]
    for system in [{}, {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
                        "platform_machine": "AMD64"},
                   {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix",
                    "platform_machine": "arm64"}]:
        env = {**default_environment(), **system, "extra": ""}
        there = [req for req in locked if req.marker is None or req.marker.evaluate(env)]
        pinned = {canonicalize_name(req.name) for req in there}
        missing = set()
        for req in there:
            try:
                needs = [Requirement(need) for need in metadata.requires(req.name) or []]
            except metadata.PackageNotFoundError:
                continue  # (plain tensorflow, for macOS: the same needs as tensorflow_cpu here)
            missing |= {f"{need.name} (for {req.name})" for need in needs
                        if (need.marker is None or need.marker.evaluate(env))
                        and canonicalize_name(need.name) not in pinned}
        # (pip freeze leaves out pip's own setuptools and wheel: not pinned, as ever)
        assert {miss for miss in missing if miss.split()[0] not in {"setuptools", "wheel"}} \
            == set(), system
