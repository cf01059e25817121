"""Which saliency method explains the bundled checkpoint better at 32x32, and how fast is each?

    python benchmarks/saliency.py [--data ../shared/data/cifar10-jpg.tar.gz] [--images 40]

For the first ``--images`` CIFAR-10 test images (spread over the classes), each method explains
the predicted class; the explanation is scored by the deletion metric (grey out pixels
4x4-pixel squares most-salient first, mean class probability over 16 steps: lower is better)
against a random order of the squares as the baseline, measured in the same run. Prints the median time per image and the median
deletion score of each method, and its ratio to the random baseline. No thresholds.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULT_DATA = os.environ.get("PIXELCLASSIFIER_DATA",
                              str(ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()

    import numpy as np

    from training.checkpoints import load_checkpoint
    from training.data import load_labelled
    from training.paths import bundled_checkpoint, user_cache_dir
    from training.predict import probabilities
    from training import saliency

    model, info = load_checkpoint(bundled_checkpoint())
    test = load_labelled(args.data, "test", info.preprocessing, cache_dir=user_cache_dir())
    pick = np.linspace(0, len(test) - 1, args.images).astype(int)
    images = test.images[pick]
    classes = probabilities(model, images, info.tta).argmax(1)
    rng = np.random.default_rng(0)
    predict = lambda x: probabilities(model, x, info.tta)  # noqa: E731 (what the app's Classifier does)
    flipless = lambda x: probabilities(model, x, "none")  # noqa: E731
    methods = {
        "grad-cam (8x8 block)": lambda im, c: saliency.grad_cam(model, im, c, tta=info.tta),
        "grad-cam (last, 4x4)": lambda im, c: saliency.grad_cam(
            model, im, c, saliency.conv_block_names(model)[-1][0], tta=info.tta),
        "occlusion 8px/4": lambda im, c: saliency.occlusion(predict, im, c, 8, 4),
        "occlusion 8px/4, no flip": lambda im, c: saliency.occlusion(flipless, im, c, 8, 4),
        "occlusion 8px/8": lambda im, c: saliency.occlusion(predict, im, c, 8, 8),
        "occlusion 6px/2": lambda im, c: saliency.occlusion(predict, im, c, 6, 2),
        "random (baseline)": lambda im, c: np.kron(rng.random((8, 8)), np.ones((4, 4))),
    }
    for method in methods.values():  # warm-up: tracing, first allocations
        method(images[0], int(classes[0]))
    results = {}
    for name, method in methods.items():
        times, scores = [], []
        for image, c in zip(images, classes):
            t0 = time.perf_counter()
            heat = method(image, int(c))
            times.append(time.perf_counter() - t0)
            scores.append(saliency.deletion_auc(predict, image, int(c), heat))
        results[name] = (statistics.median(times), statistics.median(scores), np.mean(scores))
    base = results["random (baseline)"][1]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or '?'}; "
          f"{args.images} CIFAR-10 test images, bundled checkpoint, flip TTA {info.tta}")
    print(f"{'method':24s} {'median ms':>10s} {'deletion (median)':>18s} {'mean':>6s} "
          f"{'x random':>9s}")
    for name, (t, median, mean) in results.items():
        print(f"{name:24s} {t * 1000:10.1f} {median:18.3f} {mean:6.3f} {median / base:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
