"""Set-up and entry points for developers: `python dev.py run`, `test` and `package`.

Each command makes sure `.venv/` in the project root exists and matches `requirements.txt`
(exact, locked versions), creating or refreshing it when missing or stale, then runs the app
or the whole test suite inside it. Only the standard library is used here, so a fresh machine
with Python 3.11 needs nothing else.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.txt"
STAMP = VENV / "requirements.sha256"
VENV_BYTES = 3_000_000_000  # what the locked packages take on disk, with room to unpack (2.4 GB)


def venv_python() -> Path:
    """Path of the interpreter inside `.venv` (Windows and POSIX layouts)."""
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def venv_works(python: Path) -> bool:
    """Whether ``python`` runs, is Python 3.11 and has pip: a venv cut short (Ctrl+C while pip
    was bootstrapped, a system without python3.11-venv) or whose base Python is gone is not."""
    try:
        return subprocess.run([str(python), "-c", "import sys, pip; "
                               "raise SystemExit(sys.version_info[:2] != (3, 11))"],
                              capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_venv() -> Path:
    """Create or refresh `.venv` when its recorded lock hash differs from `requirements.txt`,
    or when it does not work (then it is made anew)."""
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    python = venv_python()
    fresh = STAMP.exists() and STAMP.read_text().strip() == want
    works = python.exists() and venv_works(python)
    if works and fresh:
        return python  # (a working 3.11 .venv serves whichever Python started this script)
    if not works and sys.version_info[:2] != (3, 11):
        raise SystemExit(f"error: run this with Python 3.11 (python3.11 dev.py ...); this is "
                         f"{sys.version.split()[0]}, and the locked versions are for 3.11")
    print(f"Setting up {VENV} from {LOCK.name} (first run, changed lock or a broken "
          f".venv)...", flush=True)
    if not works:
        STAMP.unlink(missing_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True, symlinks=os.name != "nt").create(VENV)
    free = shutil.disk_usage(VENV).free
    if free < VENV_BYTES:
        print(f"warning: {free / 1e9:.1f} GB free on the disk of {VENV}; the locked packages "
              f"take about {VENV_BYTES / 1e9:.1f} GB", file=sys.stderr, flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    if subprocess.run(pip + ["install", "-r", str(LOCK)]).returncode:
        raise SystemExit(f"error: pip could not install {LOCK.name} into {VENV} (its message is "
                         f"above; {shutil.disk_usage(VENV).free / 1e9:.1f} GB free on that disk "
                         f"now); run the same command again once it is fixed")
    STAMP.write_text(want + "\n")
    return python


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
    batch and keeps its best epoch, pytest prints its summary); dev.py only waits for it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if cwd is None:  # the caller's folder is not searched for modules (a training.py there)
        env["PYTHONSAFEPATH"] = "1"
    child = subprocess.Popen(command, cwd=cwd, env=env)
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            continue
    return 128 - code if code < 0 else code  # killed by a signal: the shell's way of saying so


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
        # tensorflow-cpu has wheels for x86-64 Linux and Windows only: plain tensorflow of the
        # same release elsewhere (freeze writes the one installed here, without markers)
        frozen = re.sub(r"(?im)^tensorflow[-_]cpu==(\S+)$", lambda m: (
            f'tensorflow_cpu=={m[1]}; sys_platform != "darwin" and platform_machine in '
            f'"x86_64 AMD64"\ntensorflow=={m[1]}; sys_platform == "darwin" or platform_machine '
            f'not in "x86_64 AMD64"'), frozen)
    out.write_text("# Locked versions for Python 3.11 (generated from requirements.in by: "
                   "python dev.py lock)\n" + frozen)
    print(f"wrote {out}: {len(frozen.splitlines())} packages", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # while .venv was being made: the next command makes it anew
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
