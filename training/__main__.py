"""Headless command line over the same functions the window uses.

    python -m training predict PATH... [--checkpoint FILE] [--top-k K] [--json] [--strict]
    python -m training train --data PATH [--from CHECKPOINT [--head-only] | --scratch] [--epochs N] ...
    python -m training evaluate --data PATH [--checkpoint FILE] [--json]
    python -m training calibrate --data PATH [--checkpoint FILE]
    python -m training export --format keras|savedmodel|tflite|tflite-int8|onnx --out FOLDER
                              [--checkpoint FILE] [--data PATH] [--json]
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from .cli_args import build_parser, load_labelled, one_line
from .paths import cannot_write, keras_home
from .cli_train import cmd_train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ banner off stdout/stderr
BACKEND_PACKAGES = {"jax": ("jax", "jaxlib")}  # what a Keras backend imports (default: its name)


def settle_keras_backend() -> None:
    """Keras's settings live in our folder, never ``~/.keras``, as in the app. A backend the
    user chose (``KERAS_BACKEND``, or that folder's keras.json) is kept when its package is
    installed (JAX on a GPU machine trains much faster); otherwise one line on stderr says so
    and TensorFlow, which ships with the app, is used (Keras's own error is a 39-line traceback)."""
    import importlib.util

    os.environ.setdefault("KERAS_HOME", str(keras_home()))
    asked = os.environ.get("KERAS_BACKEND", "")
    source = f"KERAS_BACKEND={asked}"
    if not asked:  # (a KERAS_HOME of the user's own may name one)
        settings = Path(os.environ["KERAS_HOME"]) / "keras.json"
        try:
            asked = str(json.loads(settings.read_text())["backend"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        source = f"{settings} names the backend {asked}"
    packages = BACKEND_PACKAGES.get(asked, (asked,))
    if asked == "tensorflow" or all(p.isidentifier() and importlib.util.find_spec(p)
                                    for p in packages):
        return
    print(f"warning: {source}, which is not installed here: using tensorflow", file=sys.stderr)
    os.environ["KERAS_BACKEND"] = "tensorflow"


if __name__ == "__main__":  # the command line, before any command imports Keras (a test that
    settle_keras_backend()  # imports main keeps its own environment)


def cmd_predict(args) -> int:
    from .checkpoints import CheckpointError
    from .paths import bundled_checkpoint
    from .predict import Classifier

    try:
        classifier = Classifier.load(args.checkpoint or bundled_checkpoint())
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # A file name that is not valid UTF-8 is printed escaped, never a UnicodeEncodeError.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    classified = 0
    for result in predictions(classifier, args.paths, args.top_k, args.strict):
        classified += bool(result["ok"])
        if args.json:
            print(json.dumps(result), flush=True)
        elif result["ok"]:
            best = ", ".join(f"{g['label']} {g['probability']:.1%}" for g in result["top"])
            print(f"{result['path']}: {best}", flush=True)
        else:
            print(f"{result['path']}: cannot use: {result['error']}", flush=True)
    return 0 if classified else 1  # nothing could be classified: a script should notice


def predictions(classifier, paths, top_k: int, strict: bool):
    """Each path's results in the order given, each chunk's as soon as it is classified (a
    script piping into ``head`` or a Ctrl+C gets what was done), a folder without images said
    in its turn. Paths between two such folders are expanded together (a folder reached twice,
    through a link, is listed once)."""
    from .predict import classify_files, expand_paths, is_folder, iter_image_files

    group = []
    for path in [*paths, None]:
        errors = []
        empty = path is not None and is_folder(Path(path)) and next(
            iter_image_files(path, errors=errors), None) is None
        if path is not None and not empty:
            group.append(path)
            continue
        yield from classify_files(classifier, expand_paths(group), top_k, strict)
        group = []
        if empty:
            reason = (f"cannot read {errors[0][0]}: {errors[0][1]}" if errors
                      else "no image files found in this folder")
            yield {"path": path, "ok": False, "error": reason}


def cmd_evaluate(args) -> int:
    """Evaluate and keep the result with the checkpoint (the bundled one's in the user folder)."""
    from .checkpoints import CheckpointError
    from .data import DataError
    from .evaluate import evaluate_checkpoint, report_overwrites, write_report
    from .evaluation_store import overlay_for
    from .paths import bundled_checkpoint, user_cache_dir

    checkpoint = Path(args.checkpoint or bundled_checkpoint())
    if args.report:  # checked before minutes of evaluating, and never a checkpoint's own file
        report = Path(args.report).resolve()
        if why := report_overwrites(Path(args.report), checkpoint):
            print(f"error: --report {args.report} {why}", file=sys.stderr)
            return 2
        if not report.parent.is_dir():
            print(f"error: --report: no such folder: {report.parent}", file=sys.stderr)
            return 2
        if why := cannot_write(report):
            print(f"error: --report: {why}", file=sys.stderr)
            return 2
    try:
        record, _, _ = evaluate_checkpoint(checkpoint, Path(args.data), args.part,
                                           cache_dir=user_cache_dir(),
                                           overlay=overlay_for(checkpoint))
        if args.report:
            write_report(record, Path(args.report), checkpoint.stem)
    except (CheckpointError, DataError, ValueError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    if record.get("not_stored"):  # shown, but not kept with the checkpoint
        print(f"warning: not stored with {checkpoint.stem}: {record['not_stored']}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(record))
    else:
        print(f"accuracy {record['accuracy']:.4f} on {record['images']} images ({record['data']}), "
              f"mean confidence {record['mean_confidence']:.3f}")
        if record.get("skipped"):
            print(f"{record['skipped']} unreadable file(s) left out:", file=sys.stderr)
            for name, why in record["skipped_examples"]:
                print(f"  skipped {name}: {why}", file=sys.stderr)
        for name, row in record["per_class"].items():
            shown = {k: "  -  " if row[k] is None else f"{row[k]:.3f}"
                     for k in ("precision", "recall", "f1")}
            print(f"  {name:12s} precision {shown['precision']} recall {shown['recall']} "
                  f"f1 {shown['f1']}")
    return 0


def cmd_calibrate(args) -> int:
    """Write the calibration into the checkpoint's sidecar (the model file is not touched). The
    bundled checkpoint's ships with the app: without ``--checkpoint`` naming it, it is measured
    and printed, and the sidecar is left as shipped."""
    from .calibration import calibrate
    from .checkpoints import CheckpointError, atomic_write_bytes, load_checkpoint, sidecar_path
    from .data import DataError
    from .evaluate import predict_set, validation_part
    from .paths import bundled_checkpoint

    checkpoint = Path(args.checkpoint or bundled_checkpoint())
    store = args.checkpoint is not None
    if store and sidecar_path(checkpoint).is_file() and not (  # (a missing one: "not found" below)
            os.access(sidecar_path(checkpoint), os.W_OK) and os.access(checkpoint.parent, os.W_OK)):
        print(f"error: {checkpoint.stem}'s sidecar cannot be written here (a read-only install): "
              "calibrate a copy of it (--checkpoint)", file=sys.stderr)
        return 1
    try:
        model, info = load_checkpoint(checkpoint)
        data = load_labelled(args.data, "train", policy=info.preprocessing)
        val = validation_part(data, info)
        result = calibrate(predict_set(model, val, info.tta), val.labels)
        if store:
            atomic_write_bytes(sidecar_path(checkpoint), replace(info, calibration=result)
                               .to_json().encode())
    except (CheckpointError, DataError, ValueError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"{checkpoint.stem}: low-confidence threshold {result['threshold']:.3f} on "
          f"{result['images']} validation images (flags {result['flagged_correct']:.1%} of the "
          f"correct and {result['flagged_wrong']:.1%} of the wrong predictions); "
          f"expected calibration error {result['ece']:.3f}")
    if not store:
        print("(not stored: the bundled checkpoint's sidecar is kept as shipped; name it with "
              "--checkpoint to rewrite it)")
    return 0


def cmd_export(args) -> int:
    """Exit 0 when the export predicts like the app, 3 when it was written but disagrees, 2
    when ``--out`` cannot be written."""
    from .checkpoints import CheckpointError, read_info
    from .export import ExportError, check_export, export_checkpoint, parity_sample
    from .paths import bundled_checkpoint

    checkpoint = args.checkpoint or bundled_checkpoint()
    out = Path(args.out)  # a usage error, as train's --out; said before the checkpoint is read
    if why := (f"{out} is a file, not a folder" if out.exists() and not out.is_dir()
               else cannot_write(out / "labels.txt")):
        print(f"error: --out: {why}", file=sys.stderr)
        return 2
    try:
        check_export(checkpoint, args.fmt, args.out)  # refusals before the data is read
        info = read_info(checkpoint)
        sample = parity_sample(args.data, 256, info.preprocessing, info.class_names)
        result = export_checkpoint(checkpoint, args.fmt, args.out, sample=sample)
    except (CheckpointError, ExportError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        # the parity figures name the artefact by its file name: the path given here wins
        print(json.dumps({"format": result.format, "folder": str(result.folder), **result.parity,
                          "artefact": str(result.artefact), "ok": result.ok}))
    else:
        print(result.summary())
    return 0 if result.ok else 3


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    command = {"predict": cmd_predict, "train": cmd_train, "evaluate": cmd_evaluate,
               "calibrate": cmd_calibrate, "export": cmd_export}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:  # Ctrl+C: one line, the conventional exit status
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` closed the pipe: stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
