"""Which validation split a run uses, given where it comes from, and what its sidecar records of it.

A fine-tune, a distillation student or a resumed run must never pick or judge its epochs on
images its parent, an ancestor or a teacher trained on: ``split_rule_for`` derives the split from
them, ``split_record`` writes ``config.split`` (what re-derives it, where it came from, what was
kept back to train, whether it is clean, every ancestor's data and split). ``splits.py`` holds
the split itself.
"""
from __future__ import annotations

from .data import ImageSet
from .recipes import TrainConfig
from .splits import (held_out_by, split_by_content, split_is_clean, split_rule,
                     trained_under_the_share)


def split_rule_for(config: TrainConfig, parent_info, fingerprint: str, backup_dir,
                   teachers) -> dict:
    """How to split, so that images the parent, its ancestors or a teacher trained on never
    pick or judge this run's epochs: on the parent's data, the split the parent really held out
    (its own parent's, for a fine-tune); on other data (the same folder with images added, say)
    after a parent that split by content, its seed and at most its share, borrowing nothing and
    keeping in training what it trained on under the share; with a teacher trained on this data
    (and no such parent), the teacher's split; else the run's own. A run resumed from a backup
    made before splits by content keeps the shuffled split it began with."""
    from .backups import backup_split_kind
    from .checkpoints import read_info

    rule = {"fraction": config.val_fraction, "seed": config.seed, "by_content": True,
            "borrow": True, "trained": frozenset()}
    if parent_info is not None:
        theirs = split_rule(parent_info)
        if theirs["fraction"] > 0 and parent_info.data_fingerprint == fingerprint:
            return theirs
        if theirs["fraction"] > 0 and theirs["by_content"]:  # (all-data: nothing kept clean)
            return {**theirs, "fraction": min(config.val_fraction, theirs["fraction"]),
                    "borrow": False}
    if teachers and config.val_fraction > 0:  # (none held out: nothing a teacher could leak)
        for path in teachers:
            try:
                info = read_info(path)
            except Exception:  # noqa: BLE001 - the teachers' own check says why, later
                continue
            theirs = split_rule(info)
            if info.data_fingerprint == fingerprint and theirs["fraction"] > 0:
                return theirs
    if backup_split_kind(backup_dir) == "shuffle":
        rule["by_content"] = False
    return rule


def split_record(rule: dict, config: TrainConfig, parent_info, fingerprint: str,
                 train_set: ImageSet) -> dict:
    """``config.split`` of the sidecar: what re-derives the split (``split_rule``), where it
    came from, and whether any ancestor trained on its validation images."""
    return {"seed": rule["seed"], "val_fraction": rule["fraction"],
            "from_parent": (rule["seed"], rule["fraction"]) != (config.seed, config.val_fraction),
            "by": "content" if rule["by_content"] else "shuffle", "borrow": rule["borrow"],
            "trained": kept_to_train(train_set, rule),
            "clean": clean_split(parent_info, fingerprint, rule),
            "ancestors": ancestors(parent_info)}


def kept_to_train(train_set: ImageSet, rule: dict) -> list[str]:
    """What a fine-tune of this run on grown data must keep in training (config.split.trained):
    the images this run trained on although drawn under the share, and those its ancestors did
    (inherited, even when this folder lacks them: they may come back)."""
    if not rule["by_content"]:
        return []
    own = trained_under_the_share(train_set, rule["fraction"], rule["seed"])
    return sorted(set(rule["trained"]) | set(own))


def ancestors(parent_info) -> list:
    """The data and held-out split of every run this one descends from, oldest first:
    ``[fingerprint, seed, share, "content" or "shuffle"]`` each (a parent made before they were
    recorded: itself only; one recorded without its kind split by shuffling)."""
    if parent_info is None:
        return []
    used = parent_info.config.get("split")
    theirs = used.get("ancestors") if isinstance(used, dict) else None
    known = [list(a) + ["shuffle"] * (4 - len(a)) for a in theirs
             if isinstance(a, list) and len(a) in (3, 4)] if isinstance(theirs, list) else []
    kind = "content" if split_by_content(parent_info) else "shuffle"
    return known + [[parent_info.data_fingerprint, *held_out_by(parent_info), kind]]


def clean_split(parent_info, fingerprint: str, rule: dict) -> bool:
    """Whether no ancestor trained on this run's validation images: each one on the same data
    held out this very split (one that held none out saw them all; another split, some), and a
    parent on this data recorded its own split clean."""
    if parent_info is None:
        return True
    if parent_info.data_fingerprint == fingerprint and not split_is_clean(parent_info):
        return False
    ours = (rule["seed"], rule["fraction"], "content" if rule["by_content"] else "shuffle")
    return all(data != fingerprint or (share > 0 and (seed, share, kind) == ours)
               for data, seed, share, kind in ancestors(parent_info))
