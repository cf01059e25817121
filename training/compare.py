"""What differs between two checkpoints: metrics, training settings, per-class recall on data
both were evaluated on, and their training curves (the Compare dialog)."""
from __future__ import annotations

from .checkpoints import CheckpointInfo


def compare(a: CheckpointInfo, b: CheckpointInfo) -> dict:
    """What differs between two checkpoints, for a side-by-side view.

    Returns:
        ``metrics``: rows (name, a, b) for every metric either records; ``config``: rows
        (key, a, b) where the training configs differ; ``per_class``: rows (class, recall a,
        recall b, difference) from evaluations both made on the same data (``per_class_data``
        names it), empty when there is none; ``histories``: (a, b) training curves.
    """
    metrics = [(k, a.metrics.get(k), b.metrics.get(k)) for k in sorted({*a.metrics, *b.metrics})]
    skip = {"wall_time_s", "split"}  # (split: shown by the data and seed it comes from)
    import json

    from .recipes import TrainConfig

    # a setting added after a checkpoint was made: it trained with that setting's default
    defaults = json.loads(json.dumps(TrainConfig().to_dict()))
    ca, cb = ({**{k: v for k, v in defaults.items() if k not in c}, **c} for c in (a.config, b.config))
    config = [(k, ca.get(k), cb.get(k)) for k in sorted({*a.config, *b.config})
              if ca.get(k) != cb.get(k) and k not in skip]
    for key in ("data_fingerprint", "preprocessing", "tta", "parent"):
        va, vb = getattr(a, key), getattr(b, key)
        va, vb = (v.to_dict() if hasattr(v, "to_dict") else v for v in (va, vb))
        if va != vb:
            config.append((key, va, vb))
    per_class, data = [], ""
    # the same data (same pixels, same classes), whatever name each checkpoint keeps it under
    shared = [(ka, kb) for ka, ra in a.evaluations.items() for kb, rb in b.evaluations.items()
              if isinstance(ra, dict) and isinstance(rb, dict) and ra.get("data_fingerprint")
              and ra.get("data_fingerprint") == rb.get("data_fingerprint")
              and ra.get("class_names") == rb.get("class_names")]
    if shared:
        ka, kb = sorted(shared, key=lambda k: str(a.evaluations[k[0]].get("created", "")))[-1]
        data = ka
        try:
            ea, eb = a.evaluations[ka]["per_class"], b.evaluations[kb]["per_class"]
            for name in a.evaluations[ka]["class_names"]:
                if ea[name]["recall"] is None or eb[name]["recall"] is None:
                    continue  # a class without images in that data: nothing to compare
                ra, rb = float(ea[name]["recall"]), float(eb[name]["recall"])
                per_class.append((name, ra, rb, rb - ra))
        except (KeyError, TypeError, ValueError):  # a record without per-class recall
            per_class, data = [], ""
    return {"metrics": metrics, "config": config, "per_class": per_class, "per_class_data": data,
            "histories": (a.history, b.history)}
