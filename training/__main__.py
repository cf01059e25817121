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
from .paths import cannot_write
from .cli_train import cmd_train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ banner off stdout/stderr


def cmd_predict(args) -> int:
    from .checkpoints import CheckpointError
    from .paths import bundled_checkpoint
    from .predict import Classifier, classify_files, expand_paths, is_folder, iter_image_files

    try:
        classifier = Classifier.load(args.checkpoint or bundled_checkpoint())
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # A file name that is not valid UTF-8 is printed escaped, never a UnicodeEncodeError.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    empty = []
    for p in args.paths:
        errors = []
        if is_folder(Path(p)) and next(iter_image_files(p, errors=errors), None) is None:
            reason = (f"cannot read {errors[0][0]}: {errors[0][1]}" if errors
                      else "no image files found in this folder")
            empty.append({"path": p, "ok": False, "error": reason})
    classified = 0
    for result in [*empty, *classify_files(classifier, expand_paths(args.paths), args.top_k,
                                           args.strict)]:
        classified += bool(result["ok"])
        if args.json:
            print(json.dumps(result), flush=True)
        elif result["ok"]:
            best = ", ".join(f"{g['label']} {g['probability']:.1%}" for g in result["top"])
            print(f"{result['path']}: {best}")
        else:
            print(f"{result['path']}: cannot use: {result['error']}")
    return 0 if classified else 1  # nothing could be classified: a script should notice


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
    """Exit 0 when the export predicts like the app, 3 when it was written but disagrees."""
    from .checkpoints import CheckpointError, read_info
    from .export import ExportError, check_export, export_checkpoint, parity_sample
    from .paths import bundled_checkpoint

    checkpoint = args.checkpoint or bundled_checkpoint()
    try:
        check_export(checkpoint, args.fmt, args.out)  # refusals before the data is read
        info = read_info(checkpoint)
        sample = parity_sample(args.data, 256, info.preprocessing, info.class_names)
        result = export_checkpoint(checkpoint, args.fmt, args.out, sample=sample)
    except (CheckpointError, ExportError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"format": result.format, "folder": str(result.folder),
                          "artefact": str(result.artefact), "ok": result.ok, **result.parity}))
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
