"""``python -m training train``: a run from the command line, which Ctrl+C stops as the app's
Stop does, then its test-part accuracy and the whole command's wall time in the sidecar."""
from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from .cli_args import load_labelled, one_line
from .paths import cannot_write
from .recipes import RECIPES


def cmd_train(args) -> int:
    from .recipes import TrainConfig
    from .reporting import CancelFlag, PrintReporter

    if args.head_only and not args.parent:
        print("error: --head-only needs --from CHECKPOINT", file=sys.stderr)
        return 2
    if args.distill is not None and not args.teachers:
        print("error: --distill needs --teacher CHECKPOINT", file=sys.stderr)
        return 2
    if args.tensorboard:
        import importlib.util
        if importlib.util.find_spec("tensorboard") is None:
            print("error: --tensorboard needs the tensorboard package (pip install tensorboard)",
                  file=sys.stderr)
            return 2
    started = time.perf_counter()
    recipe = args.recipe or ("fine-tune" if args.parent else "fast")
    config = TrainConfig(**RECIPES[recipe])
    return _train(args, config, PrintReporter(cancel=CancelFlag()), started)


def _train(args, config, reporter, started: float) -> int:
    from .backups import completed_epochs, resumed_out
    from .checkpoints import CheckpointError, now_iso, read_info
    from .data import DataError
    from .library import run_name
    from .paths import release_checkpoint, reserve_checkpoint, user_checkpoints_dir
    from .recipes import TrainConfig, fit_to_data
    from .train import Cancelled, train

    reserved = None
    try:
        head_only = args.head_only
        if args.config:
            recorded = read_info(Path(args.config).with_suffix(".keras"))
            config = TrainConfig.from_dict(recorded.config)
            if recorded.parent and not args.parent:  # it would train from scratch instead
                print(f"error: --config: that run was fine-tuned from '{recorded.parent}' (model "
                      f"SHA-256 {recorded.parent_sha256[:12] or 'not recorded'}): give it with "
                      "--from to re-run it", file=sys.stderr)
                return 2
            head_only = head_only or (args.parent and recorded.config.get("fine_tune") == "head")
        overrides = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__
                     if k not in ("widths", "teachers") and getattr(args, k, None) is not None}
        if args.teachers:
            overrides["teachers"] = tuple(str(Path(t).resolve()) for t in args.teachers)
        if args.widths:
            overrides["widths"] = args.widths
        config = replace(config, **overrides)
        policy = read_info(args.parent).preprocessing if args.parent else None
        out = Path(args.out) if args.out else user_checkpoints_dir()
        named = False  # a name made up here, which another run may make at the same moment
        if out.suffix != ".keras":
            resumed = resumed_out(args.backup)
            named = resumed is None
            out = resumed or out / f"{run_name(args.data, now_iso())}.keras"
        if why := cannot_write(out):  # found before the data is read and the run trains
            if args.out:
                print(f"error: --out: {why}", file=sys.stderr)
            else:  # (not "--out": the user gave none) which folder, and what to do instead
                print(f"error: the per-user checkpoints folder {out.parent} cannot be written "
                      f"({why}): give a file or folder with --out", file=sys.stderr)
            return 2
        if named:  # a run started in the same second (a seed sweep) makes the same name
            out = reserved = reserve_checkpoint(out)
        data = load_labelled(args.data, "train", reporter, policy)
        if not args.config:  # what the user gave stays; the rest is scaled to the data
            scaled = fit_to_data(config, len(data),
                                 keep=frozenset({"epochs", "batch_size", "lr"} & set(overrides)))
            if scaled != config:
                print(f"{len(data)} images: batch size {scaled.batch_size}, learning rate "
                      f"{scaled.lr:.4g}, {scaled.epochs} epochs (the recipe scaled to the data)")
            config = scaled
        command = "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        for name, reason in data.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        print(f"training on {len(data)} images, {len(data.class_names)} classes -> {out}", flush=True)
        with _ctrl_c_stops(reporter.cancel):  # (elsewhere Ctrl+C ends the command at once)
            result = train(data, config, out, reporter, parent=args.parent,
                           backup_dir=args.backup, command=command,
                           fine_tune="head" if head_only else "full",
                           tensorboard_dir=args.tensorboard)
        interrupted = result.info.config.get("stopped") == "user"
        late = reporter.cancelled() and not interrupted  # Ctrl+C after its last batch
        tested = Path(args.data).is_file() and not args.no_test  # (an archive has a test part)
        if tested and not reporter.cancelled():
            _record_test(result.checkpoint, args.data, reporter)
        _record_command_time(result.checkpoint, time.perf_counter() - started,
                             tested and not reporter.cancelled())
    except Cancelled as exc:  # Ctrl+C before an epoch was saved
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    except (DataError, CheckpointError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)  # RuntimeError: NaN from the start
        return 1
    finally:
        if reserved is not None:  # its checkpoint holds the name now; none: nothing is left
            release_checkpoint(reserved)
    stem = result.checkpoint.with_suffix("")
    print(f"saved {result.checkpoint} (history: {stem}.history.csv, {stem}.history.json)")
    if late:
        skipped = "; its test-part evaluation was skipped" if tested else ""
        print(f"interrupted: the run had finished and is saved whole{skipped}", file=sys.stderr)
        return 130
    if interrupted:
        epoch = result.info.metrics.get("best_epoch")
        done = completed_epochs(args.backup) if args.backup else 0
        again = f"; the same command goes on from epoch {done + 1}" if done else ""
        if done and done >= result.info.config.get("epochs", done + 1):  # stopped after the
            again = "; all its epochs ran, only its calibration was skipped"  # last epoch's fit
        print(f"interrupted: stopped by Ctrl+C; kept its best epoch so far ({epoch}){again}",
              file=sys.stderr)
        return 130
    return 0


@contextlib.contextmanager
def _ctrl_c_stops(stop):
    """Ctrl+C stops a run as the app's Stop does: at the next batch, the best epoch so far
    saved whole with its history and sidecar. A second Ctrl+C quits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("stopping at the next batch (the best epoch so far is kept); Ctrl+C again quits "
              "at once", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _record_test(checkpoint, archive, reporter) -> None:
    """Evaluate on the archive's test part (never used for training or selection) and record it
    in the sidecar (``test_accuracy`` and the full evaluation)."""
    from .evaluate import evaluate_checkpoint
    from .paths import user_cache_dir

    record, _, _ = evaluate_checkpoint(checkpoint, Path(archive), "test", reporter,
                                       cache_dir=user_cache_dir())
    print(f"test accuracy {record['accuracy']:.4f} on {record['images']} images", flush=True)


def _record_command_time(checkpoint, seconds: float, tested: bool = True) -> None:
    """The whole command's wall time (data loading, training, test evaluation where ``tested``)
    in the sidecar's metrics as ``command_wall_s``: what a user waited."""
    from .checkpoints import atomic_write_bytes, read_info, sidecar_path

    info = read_info(checkpoint)
    info = replace(info, metrics={**info.metrics, "command_wall_s": round(seconds, 1)})
    atomic_write_bytes(sidecar_path(checkpoint), info.to_json().encode())
    parts = "data loading, training and test evaluation" if tested else "data loading and training"
    print(f"whole command: {seconds:.0f} s ({parts})", flush=True)
