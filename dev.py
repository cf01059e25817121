"""Set-up and entry points for developers: `python dev.py run`, `test` and `package`.

Each command makes sure `.venv/` in the project root exists and matches `requirements.txt`
(exact, locked versions), making it anew when missing, stale or cut short (one dev.py at a
time), then runs the app or the whole test suite inside it. Only the standard library is used
here, so a fresh machine with Python 3.11 needs nothing else.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.txt"
STAMP = VENV / "requirements.sha256"  # written once .venv is finished for this lock
SETUP_LOCK = "setup.lock"  # in .venv: held while one dev.py makes it
VENV_BYTES = 3_000_000_000  # what the locked packages take on disk, with room to unpack (2.4 GB)


def venv_python() -> Path:
    """Path of the interpreter inside `.venv` (Windows and POSIX layouts)."""
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def venv_works(python: Path) -> bool:
    """Whether ``python`` runs, is Python 3.11 and has pip: a venv whose base Python is gone
    (or from a system without python3.11-venv) is not."""
    try:
        return subprocess.run([str(python), "-c", "import sys, pip; "
                               "raise SystemExit(sys.version_info[:2] != (3, 11))"],
                              capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def venv_ready(python: Path, want: str) -> bool:
    """Whether `.venv` was finished for the lock hashed ``want`` and still works. The stamp is
    written last, so a venv cut short (Ctrl+C, a kill, a full disk) has none, however much pip
    had unpacked: pip itself would call a half-written tensorflow installed."""
    try:
        fresh = STAMP.read_text().strip() == want
    except OSError:
        return False
    return fresh and python.exists() and venv_works(python)


def ensure_venv() -> Path:
    """Make `.venv` anew unless it was finished for the current `requirements.txt` and works:
    one without a matching stamp (first run, changed lock, cut short) is rebuilt from nothing,
    so it holds exactly the lock, never leftovers of an older lock or a broken package."""
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    python = venv_python()
    if venv_ready(python, want):
        return python  # (a working 3.11 .venv serves whichever Python started this script)
    if sys.version_info[:2] != (3, 11):
        raise SystemExit(f"error: run this with Python 3.11 (python3.11 dev.py ...); this is "
                         f"{sys.version.split()[0]}, and the locked versions are for 3.11")
    try:
        with venv_lock():
            if venv_ready(python, want):  # another dev.py made it while this one waited
                return python
            build_venv(python, want)
    except (OSError, subprocess.CalledProcessError) as error:  # read-only folder, full disk
        raise SystemExit(f"error: could not make {VENV}: {error}") from None
    return python


@contextlib.contextmanager
def venv_lock():
    """Hold `.venv/setup.lock` so only one dev.py at a time makes `.venv`: a second launch
    during the first's set-up waits for it (instead of wiping it midway), then finds it ready.
    The lock lives inside `.venv` (ignored by git), and making the venv anew leaves it be."""
    VENV.mkdir(exist_ok=True)
    with open(VENV / SETUP_LOCK, "a+b") as handle:
        if not lock_file(handle, wait=False):
            print(f"Waiting for another dev.py that is setting up {VENV}...", flush=True)
            lock_file(handle, wait=True)
        try:
            yield
        finally:
            if os.name == "nt":  # (closing releases it too, but Windows says when it likes)
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


def lock_file(handle, wait: bool) -> bool:
    """Take the exclusive lock on the open file ``handle``; False when another process holds
    it and ``wait`` is false."""
    if os.name == "nt":
        import msvcrt

        while True:
            try:
                handle.seek(0)  # (msvcrt locks bytes from the current position)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not wait:
                    return False
                time.sleep(1)  # (LK_LOCK gives up after 10 s; a set-up takes minutes)
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def build_venv(python: Path, want: str) -> None:
    """Empty `.venv` (all but the lock), create a venv there, install the lock, check the big
    packages import, and only then write the stamp that says it is finished."""
    STAMP.unlink(missing_ok=True)  # from here on, an interrupted set-up is redone next time
    print(f"Setting up {VENV} from {LOCK.name} (first run, changed lock or a broken "
          f".venv; a minute or two)...", flush=True)
    for entry in VENV.iterdir():  # packages of an older lock or a cut-short install go too
        if entry.name == SETUP_LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt").create(VENV)
    free = shutil.disk_usage(VENV).free
    if free < VENV_BYTES:
        print(f"warning: {free / 1e9:.1f} GB free on the disk of {VENV}; the locked packages "
              f"take about {VENV_BYTES / 1e9:.1f} GB", file=sys.stderr, flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    if subprocess.run(pip + ["install", "-r", str(LOCK)]).returncode:
        raise SystemExit(f"error: pip could not install {LOCK.name} into {VENV} (its message is "
                         f"above; {shutil.disk_usage(VENV).free / 1e9:.1f} GB free on that disk "
                         f"now); run the same command again once it is fixed")
    check = subprocess.run([str(python), "-c", "import tensorflow, keras; from PySide6 import "
                            "QtCore"], capture_output=True, text=True)
    if check.returncode:
        last = (check.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"error: {VENV} was installed but does not import tensorflow, keras "
                         f"and PySide6 ({last}); the next command makes it anew")
    STAMP.write_text(want + "\n")


def tree_size(folder: Path) -> int:
    """Bytes on disk of the files under ``folder`` (symlinks count as links, not targets)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def write_archive(bundle: Path, out_base: Path) -> Path:
    """One download-sized archive that unpacks into ``bundle.name/``: tar.xz on Linux (xz -6,
    all cores when the ``xz`` program is there), zip elsewhere."""
    if sys.platform.startswith("linux"):
        archive = out_base.with_name(out_base.name + ".tar.xz")
        xz = shutil.which("xz")
        if xz:
            with open(archive, "wb") as sink:
                proc = subprocess.Popen([xz, "-6", "-T0", "-c"], stdin=subprocess.PIPE, stdout=sink)
                with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                    tar.add(bundle, arcname=bundle.name)
                proc.stdin.close()
                if proc.wait():
                    raise SystemExit(f"xz failed with exit status {proc.returncode}")
        else:
            with tarfile.open(archive, "w:xz", preset=6) as tar:
                tar.add(bundle, arcname=bundle.name)
        return archive
    if sys.platform == "darwin":  # the .app links its data folders into Contents/Frameworks
        return zip_keeping_links(bundle, out_base.with_name(out_base.name + ".zip"))
    return Path(shutil.make_archive(str(out_base), "zip", bundle.parent, bundle.name))


def zip_keeping_links(bundle: Path, archive: Path) -> Path:
    """A zip whose symbolic links stay links when unpacked (Archive Utility, ditto, unzip).
    ``shutil.make_archive`` stores a linked folder as an empty folder: a macOS .app unpacked
    from it had no ``models/`` or ``resources/`` where the app looks for them."""
    import stat
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for folder, folders, files in os.walk(bundle):  # (never into a linked folder)
            here = Path(folder)
            out.write(here, here.relative_to(bundle.parent).as_posix() + "/")
            for name in sorted(folders) + sorted(files):
                path = here / name
                arcname = path.relative_to(bundle.parent).as_posix()
                if path.is_symlink():
                    entry = zipfile.ZipInfo(arcname)
                    entry.create_system = 3  # Unix: its mode says "symbolic link"
                    entry.external_attr = (stat.S_IFLNK | 0o755) << 16
                    out.writestr(entry, os.readlink(path))
                elif path.is_file():
                    out.write(path, arcname)
    return archive


def package(python: Path, argv: list[str]) -> int:
    """Build the onedir bundle with PyInstaller (build.spec) and write its archive."""
    parser = argparse.ArgumentParser(prog="python dev.py package")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="PyInstaller's work folder")
    parser.add_argument("--no-archive", action="store_true", help="build the folder only")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from training import __version__

    started = time.perf_counter()
    subprocess.run([str(python), "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm",
                    "--log-level", "WARN", "--distpath", str(args.dist),
                    "--workpath", str(args.work)], check=True, cwd=ROOT)
    bundle = args.dist / ("PixelClassifier.app" if sys.platform == "darwin" else "PixelClassifier")
    print(f"bundle:  {bundle}  {tree_size(bundle) / 1e6:,.0f} MB on disk "
          f"(built in {time.perf_counter() - started:.0f} s)", flush=True)
    if not args.no_archive:
        started = time.perf_counter()
        system = {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)
        machine = platform.machine().lower().replace("amd64", "x86_64")
        archive = write_archive(bundle, args.dist / f"PixelClassifier-{__version__}-{system}-{machine}")
        print(f"archive: {archive}  {archive.stat().st_size / 1e6:,.0f} MB download "
              f"(written in {time.perf_counter() - started:.0f} s)", flush=True)
    return 0


def main(argv: list[str]) -> int:
    commands = {
        "run": ["-m", "desktop"],
        "test": ["-m", "pytest"],
        "train": ["-m", "training"],
    }
    if not argv or argv[0] not in {*commands, "setup", "lock", "package"}:
        print("usage: python dev.py {run|test|train|package|setup|lock} [args...]", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "lock":
        return lock(Path(rest[0]) if rest else LOCK)
    python = ensure_venv()
    if cmd == "setup":
        return 0
    if cmd == "package":
        return package(python, rest)
    return run_child([str(python), *commands[cmd], *rest], cwd=ROOT if cmd == "test" else None)


def run_child(command: list[str], cwd: Path | None) -> int:
    """Run ``command`` as if typed instead of dev.py: in the caller's folder (a file name given
    to ``run`` or ``train`` is the caller's; only the tests run from the project root), and
    Ctrl+C is the child's to handle (the terminal sends it to both: ``train`` stops at the next
    batch and keeps its best epoch, pytest prints its summary); dev.py only waits for it. A
    SIGTERM or SIGHUP sent to dev.py alone (`kill PID`, an IDE's stop button) is passed on to
    the child, so it ends as it would have if typed directly, never left running."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if cwd is None:  # the caller's folder is not searched for modules (a training.py there)
        env["PYTHONSAFEPATH"] = "1"
    child, early = None, []

    def pass_on(number: int, _frame) -> None:
        if child is None:
            early.append(number)  # (arrived while it was being started)
        else:
            child.send_signal(number)

    before = {sig: signal.signal(sig, pass_on) for sig in ending_signals()}
    try:
        child = subprocess.Popen(command, cwd=cwd, env=env)
        for number in early:
            child.send_signal(number)
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's way of saying so


def ending_signals() -> list[signal.Signals]:
    """The signals other than Ctrl+C that ask a process to end (none on Windows), less those
    ignored (`nohup dev.py train ...`: the child inherits that and outlives the terminal)."""
    if os.name != "posix":
        return []
    return [sig for sig in (signal.SIGTERM, signal.SIGHUP)
            if signal.getsignal(sig) is not signal.SIG_IGN]


def end_on_signal(number: int, _frame) -> None:
    """While .venv is made: end as Ctrl+C would, stopping pip too (subprocess kills it)."""
    raise SystemExit(128 + number)


def lock(out: Path) -> int:
    """Resolve ``requirements.in`` afresh in a throw-away venv and freeze it into ``out`` (the
    lock, unless a path is given): what `.venv` holds plays no part, so a dependency dropped
    from ``requirements.in`` leaves the lock too."""
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("error: run this with Python 3.11 (python3.11 dev.py lock)")
    import tempfile

    # beside the project, not in the system's temp folder (often a small tmpfs)
    with tempfile.TemporaryDirectory(prefix=".lock-venv-", dir=ROOT) as folder:
        free = shutil.disk_usage(folder).free
        if free < VENV_BYTES:
            print(f"warning: {free / 1e9:.1f} GB free beside the project; resolving the lock "
                  f"installs about {VENV_BYTES / 1e9:.1f} GB", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt").create(folder)
        python = Path(folder) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        if subprocess.run(pip + ["install", "-r", str(ROOT / "requirements.in")]).returncode:
            raise SystemExit("error: pip could not install requirements.in (its message is above); "
                             "the lock is unchanged")
        frozen = subprocess.run(pip + ["freeze"], check=True, capture_output=True, text=True).stdout
    text = lock_text(frozen, (ROOT / "requirements.in").read_text())
    out.write_text(text)
    print(f"wrote {out}: {sum(not line.startswith('#') for line in text.splitlines())} "
          f"packages", flush=True)
    return 0


def lock_text(frozen: str, wanted: str) -> str:
    """The lock from ``pip freeze`` of the throw-away venv and ``requirements.in`` (``wanted``).
    Packages needed only on other platforms (Windows: colorama for pytest, pefile and
    pywin32-ctypes for PyInstaller) are not installed here, so freeze leaves them out: their
    pinned, marked lines in requirements.in are copied as they are."""
    # tensorflow-cpu has wheels for x86-64 Linux and Windows only: plain tensorflow of the
    # same release elsewhere (freeze writes the one installed here, without markers)
    frozen = re.sub(r"(?im)^tensorflow[-_]cpu==(\S+)$", lambda m: (
        f'tensorflow_cpu=={m[1]}; sys_platform != "darwin" and platform_machine in '
        f'"x86_64 AMD64"\ntensorflow=={m[1]}; sys_platform == "darwin" or platform_machine '
        f'not in "x86_64 AMD64"'), frozen)

    def name(project: str) -> str:  # (pip freeze writes pywin32_ctypes for pywin32-ctypes)
        return re.sub(r"[-_.]+", "-", project).lower()

    have = {name(found) for found in re.findall(r"(?m)^([\w.-]+)==", frozen)}
    elsewhere = [pin[0].strip() for pin in (re.match(r"([\w.-]+)==[^;#\s]+\s*;[^#]+", line)
                                            for line in wanted.splitlines())
                 if pin and name(pin[1]) not in have]
    if elsewhere:
        frozen += ("# Only on other platforms (not installed where the lock is made; pinned in "
                   "requirements.in)\n" + "\n".join(elsewhere) + "\n")
    return ("# Locked versions for Python 3.11 (generated from requirements.in by: "
            "python dev.py lock)\n" + frozen)


if __name__ == "__main__":
    for ending in ending_signals():
        signal.signal(ending, end_on_signal)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # while .venv was being made: the next command makes it anew
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
