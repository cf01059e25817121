"""`training/` is a library: no Qt, no desktop, and no heavy work when imported."""
import ast
import subprocess
import sys
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[2] / "training"


def test_training_never_imports_qt_or_desktop():
    offenders = []
    for file in TRAINING.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{file.name}: {n}" for n in names
                          if n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "desktop")]
    assert offenders == []


def test_importing_training_modules_loads_no_keras_or_qt():
    code = ("import sys, training.preprocessing, training.checkpoints, training.predict, "
            "training.data, training.train, training.recipes, training.evaluate, training.paths;"
            "print(sorted(m for m in ('keras', 'tensorflow', 'PySide6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=TRAINING.parent, check=True).stdout.strip()
    assert out == "[]"
