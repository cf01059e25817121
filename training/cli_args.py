"""The command line's arguments (``python -m training --help``) and the small helpers its
commands share; the commands are in :mod:`training.__main__` and :mod:`training.cli_train`."""
from __future__ import annotations

import argparse

from .recipes import RECIPES

DESCRIPTION = "Headless command line over the same functions the window uses."
USAGE = "2 usage error, or an output location that cannot be written (said before any work)"
CTRL_C, PIPE = "130 stopped by Ctrl+C", "141 the reader of the output went away (| head)"


def _exit_status(*codes: str) -> str:
    """The --help epilog: what a script can read from the exit status."""
    return "exit status: " + "; ".join(codes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=DESCRIPTION,
                                     epilog=_exit_status(
                                         "0 done", "1 failed (one line on stderr says why)",
                                         USAGE, "3 export only: written, but it does not predict "
                                         "like the app", CTRL_C, PIPE))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify image files and folders", epilog=_exit_status(
        "0 at least one file classified", "1 none could be (each says why), or the checkpoint "
        "cannot be used", "2 usage error", CTRL_C, PIPE))
    p.add_argument("paths", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--checkpoint", help="a .keras checkpoint (default: the bundled one)")
    p.add_argument("--top-k", type=_positive, default=5, metavar="K",
                   help="classes shown per image (at least 1, at most the checkpoint's classes)")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    p.add_argument("--strict", action="store_true", help="refuse images that are not exactly the checkpoint's input size (32x32 "
                   "for the bundled one), RGB")

    t = sub.add_parser("train", help="train a checkpoint", epilog=_exit_status(
        "0 saved", "1 failed (bad data, a checkpoint that cannot be used, a full disk)", USAGE,
        "130 stopped by Ctrl+C (the best epoch so far is kept, saved whole)"))
    t.add_argument("--data", required=True, help="CIFAR-10 JPEG archive, CIFAR-10 python batches "
                   "folder, or a folder with one subfolder per class")
    start = t.add_mutually_exclusive_group()
    start.add_argument("--from", dest="parent", help="checkpoint to fine-tune from")
    start.add_argument("--scratch", action="store_true", help="start from random weights (default)")
    t.add_argument("--head-only", action="store_true",
                   help="with --from: train only the final layer, keep the backbone frozen")
    t.add_argument("--recipe", choices=sorted(RECIPES),
                   help="preset config (default: fast from scratch, fine-tune with --from)")
    t.add_argument("--config", help="re-run the config recorded in a checkpoint's sidecar (.json)")
    for flag, kind in (("epochs", _positive), ("batch-size", _positive), ("lr", _not_negative),
                       ("val-fraction", _share), ("seed", _count), ("patience", _count),
                       ("weight-decay", _not_negative), ("label-smoothing", _share),
                       ("translate", _count), ("stem", _count), ("bn-momentum", _share),
                       ("logit-scale", _above_zero), ("lookahead", _count),
                       ("momentum", _share), ("warmup", _share), ("bias-lr-scale", _not_negative),
                       ("muon-lr", _not_negative), ("muon-momentum", _share)):
        t.add_argument(f"--{flag}", type=kind)
    t.add_argument("--widths", type=_widths,
                   help="channels of the three conv groups, e.g. 64,256,256")
    t.add_argument("--teacher", dest="teachers", action="append", metavar="CHECKPOINT",
                   help="distil this checkpoint (repeat for an ensemble): the teachers' averaged "
                   "probabilities on each augmented image join the targets")
    t.add_argument("--distill", type=_unit,
                   help="share of the teachers' probabilities in each target (default 0.5)")
    t.add_argument("--cutout", type=_count, help="side of the random cutout square, pixels")
    t.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--activation", choices=["gelu", "relu"])
    t.add_argument("--schedule", choices=["cosine", "triangle"], help="learning-rate shape")
    t.add_argument("--init", choices=["glorot", "torch"], help="kernel initialiser")
    t.add_argument("--optimizer", choices=["sgd", "muon"],
                   help="muon: Muon steps for 3x3 convolution kernels, SGD for the rest")
    t.add_argument("--alternate-flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip each image in every other epoch instead of at random (airbench)")
    t.add_argument("--dirac", action=argparse.BooleanOptionalAction, default=None,
                   help="3x3 convolutions start as identity where channels allow (airbench)")
    t.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=None,
                   help="frozen 2x2 whitening first layer set from the training images")
    t.add_argument("--bn-scale", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16"])
    t.add_argument("--out", help="output .keras file or folder (default: the per-user folder)")
    t.add_argument("--backup", help="folder for per-epoch backups: run the same command again "
                   "after a crash and it resumes from the last completed epoch")
    t.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard logs to DIR")
    t.add_argument("--no-test", action="store_true", help="skip the test-part evaluation")

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on labelled data",
                       epilog=_exit_status("0 done", "1 failed", USAGE, CTRL_C, PIPE))
    e.add_argument("--data", required=True,
                   help="CIFAR-10 archive or batches folder (uses the test part) or class folders")
    e.add_argument("--checkpoint", help="a .keras checkpoint (default: the bundled one)")
    e.add_argument("--part", choices=["test", "validation"], default="test",
                   help="test: the archive's test part or all class folders; validation: the "
                   "checkpoint's own held-out split of --data, its training data")
    e.add_argument("--report", metavar="FILE", help="also write the result as .json or .csv")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    c = sub.add_parser("calibrate", help="set a checkpoint's low-confidence threshold from its "
                       "validation split (done by train; this is for older checkpoints)",
                       epilog=_exit_status("0 done", "1 failed (a sidecar that cannot be "
                                           "written too)", "2 usage error", CTRL_C, PIPE))
    c.add_argument("--data", required=True, help="the data the checkpoint was trained on")
    c.add_argument("--checkpoint", help="a .keras checkpoint: its sidecar gets the threshold "
                   "(default: the bundled one, measured and printed; its sidecar is kept as "
                   "shipped)")

    from .export import FORMATS

    x = sub.add_parser("export", help="export a checkpoint and check it predicts like the app",
                       epilog=_exit_status("0 written, and it predicts like the app",
                                          "3 written, but it does not (do not ship it)",
                                          "1 failed", USAGE, CTRL_C, PIPE))
    x.add_argument("--checkpoint", help="a .keras checkpoint (default: the bundled one)")
    x.add_argument("--format", required=True, dest="fmt", choices=FORMATS)
    x.add_argument("--out", required=True, help="export folder (created; an earlier export of "
                   "the same checkpoint in it is updated)")
    x.add_argument("--data", help="labelled data for the parity sample (CIFAR-10 archive or "
                   "batches: the test part; or class folders); default: synthetic images")
    x.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def _share(text: str) -> float:
    """A share of the data, 0 (none) up to but not including 1 (all)."""
    return _number(text, float, lambda v: 0 <= v < 1,
                   "a share from 0 up to (not including) 1")


def _number(text: str, kind, ok, wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not {wanted}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text} is not {wanted}")
    return value


def _unit(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v <= 1, "a share from 0 to 1")


def _positive(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def _count(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "a whole number of at least 0")


def _not_negative(text: str) -> float:
    return _number(text, float, lambda v: 0 <= v < float("inf"), "a number of at least 0")


def _above_zero(text: str) -> float:
    return _number(text, float, lambda v: 0 < v < float("inf"), "a number above 0")


def _widths(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if len(widths) != 3 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"{text} is not three channel counts of at least 1, "
                                         "e.g. 64,256,256")
    return widths


def load_labelled(path: str, part: str, reporter=None, policy=None):
    """Any supported data set; decoded archives are cached in the per-user cache folder."""
    from .data import load_labelled as load
    from .paths import user_cache_dir
    from .preprocessing import Preprocessing

    return load(path, part, policy or Preprocessing(), reporter, cache_dir=user_cache_dir())


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
