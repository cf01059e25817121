"""Set-up and entry points for developers: `python dev.py run` and `python dev.py test`.

Each command makes sure `.venv/` in the project root exists and matches `requirements.txt`
(exact, locked versions), creating or refreshing it when missing or stale, then runs the app
or the whole test suite inside it. Only the standard library is used here, so a fresh machine
with Python 3.11 needs nothing else.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.txt"
STAMP = VENV / "requirements.sha256"


def venv_python() -> Path:
    """Path of the interpreter inside `.venv` (Windows and POSIX layouts)."""
    sub = "Scripts/python.exe" if os.name == "nt" else "bin/python"
    return VENV / sub


def ensure_venv() -> Path:
    """Create or refresh `.venv` when its recorded lock hash differs from `requirements.txt`."""
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return python
    if sys.version_info[:2] != (3, 11):
        print(f"warning: the lock is made for Python 3.11; this is {sys.version.split()[0]}",
              file=sys.stderr)
    print(f"Setting up {VENV} from {LOCK.name} (first run or changed lock)...", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "-r", str(LOCK)], check=True)
    STAMP.write_text(want + "\n")
    return python


def main(argv: list[str]) -> int:
    commands = {
        "run": ["-m", "desktop"],
        "test": ["-m", "pytest"],
        "train": ["-m", "training"],
        "bench": [],
    }
    if not argv or argv[0] not in commands | {"setup": None, "lock": None}:
        print("usage: python dev.py {run|test|train|setup|lock} [args...]", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    python = ensure_venv()
    if cmd == "setup":
        return 0
    if cmd == "lock":
        frozen = subprocess.run([str(python), "-m", "pip", "freeze"], check=True,
                                capture_output=True, text=True).stdout
        LOCK.write_text("# Locked versions for Python 3.11 (generated from requirements.in by: "
                        "python dev.py lock)\n" + frozen)
        return 0
    return subprocess.call([str(python), *commands[cmd], *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
