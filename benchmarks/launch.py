"""Launch time: process start to window shown, and to the first prediction's bars painted.

    python benchmarks/launch.py [--runs 5] [--app dist/PixelClassifier/PixelClassifier]

Each run spawns a fresh app: ``python -m desktop`` from source, or with ``--app`` the packaged
executable (``python dev.py package`` builds it). The app itself reports the milestone
(``desktop/milestones.py``, switched on by ``PIXELCLASSIFIER_MILESTONE``): it prints
``time.time()`` when the milestone is reached and exits at once; this script subtracts the
``time.time()`` it read just before spawning, so each figure covers interpreter start (or the
bundle's bootloader), imports, window construction and, for the prediction, the TensorFlow import,
model load, warm-up and painting. Offscreen Qt, settings in a throw-away folder.

  window shown      first paint event of the main window
  first prediction  all top-k bars painted for a 32x32 image opened at start (the image is read
                    while the model loads and classified as soon as the model is ready)

Baseline, measured in the same run: a bare interpreter, ``python -c pass``, spawn to exit.
Reported: medians over the runs and their ratio to the baseline. No thresholds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TIMEOUT_S = 300


def make_image(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = folder / "launch-32x32.png"
    Image.fromarray(pixels, "RGB").save(path)
    return path


def child_env(config_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(config_dir),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="1")
    return env


def bare_interpreter(env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def to_milestone(milestone: str, app: list[str], args: list[str], env: dict) -> float:
    """Seconds from just before spawning the app to the app's own milestone timestamp."""
    spawned = time.time()
    proc = subprocess.run([*app, *args], cwd=ROOT, env={**env, "PIXELCLASSIFIER_MILESTONE": milestone},
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    for line in proc.stdout.splitlines():
        if line.startswith(f"MILESTONE {milestone} "):
            return float(line.split()[2]) - spawned
    raise RuntimeError(f"{milestone}: no milestone (exit {proc.returncode}):\n"
                       f"{proc.stdout}\n{proc.stderr[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--app", help="a packaged executable to launch instead of python -m desktop")
    args = parser.parse_args()
    app = [str(Path(args.app).resolve())] if args.app else [sys.executable, "-m", "desktop"]

    from training.hardware import describe

    print(f"machine: {describe()}")
    print(f"app: {' '.join(app)}")
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, medians; "
          f"QT_QPA_PLATFORM=offscreen")
    with tempfile.TemporaryDirectory(prefix="pc-launch-") as tmp:
        tmp = Path(tmp)
        image = make_image(tmp)
        env = child_env(tmp / "config")
        # Untimed warm-up: fills the OS page cache so every timed run starts equally warm.
        bare_interpreter(env)
        to_milestone("predicted", app, [str(image)], env)
        samples = {"bare": [], "shown": [], "predicted": []}
        for _ in range(args.runs):  # interleaved, so slow drift hits every measure alike
            samples["bare"].append(bare_interpreter(env))
            samples["shown"].append(to_milestone("shown", app, [], env))
            samples["predicted"].append(to_milestone("predicted", app, [str(image)], env))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["bare"]
    rows = [("bare interpreter (python -c pass, baseline)", "bare"),
            ("launch -> window shown", "shown"),
            ("launch -> first prediction painted", "predicted")]
    for label, key in rows:
        runs = " ".join(f"{v:.3f}" for v in samples[key])
        print(f"{label:<44} median {medians[key]:7.3f} s  "
              f"x{medians[key] / base:6.1f} baseline   runs: {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
