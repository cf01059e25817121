"""`python -m desktop --self-test` (reused by the packaging smoke test)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_classifies_the_sample_and_exits_0(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PIXELCLASSIFIER_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "desktop", "--self-test"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "self-test: sample-ship.jpg: ship" in proc.stdout
