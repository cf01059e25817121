"""The notes an export folder carries next to the model: ``labels.txt``, ``preprocessing.json``,
``parity.json`` and a ``README.md`` whose snippet reproduces the app's preprocessing."""
from __future__ import annotations

import json
from pathlib import Path

from .checkpoints import atomic_write_bytes
from .preprocessing import Preprocessing


# What each runtime calls the one input and the one output (read off exported models: the
# SavedModel's serving signature, the TFLite tensors, the ONNX graph; keras: called directly).
# They hold for every checkpoint because export_formats.serving_model always puts the network
# behind an input named "image" (an imported network may call its own input anything) and the
# ONNX writer renames its tensors.
INPUT_NAMES = {"savedmodel": "image", "tflite": "serving_default_image:0", "onnx": "image"}
OUTPUT_NAMES = {"savedmodel": "output_0", "tflite": "StatefulPartitionedCall_1:0",
                "onnx": "probabilities"}


def write_description(out_dir: Path, info, digest: str, mixed: bool) -> None:
    """labels.txt and preprocessing.json: what every format in the folder shares."""
    h, w, c = info.input_shape
    described = {
        "checkpoint": info.name, "checkpoint_sha256": digest,
        "class_names": list(info.class_names),
        "input": {"names": INPUT_NAMES, "shape": [None, h, w, c], "layout": "NHWC",
                  "channels": "RGB", "dtype": "float32", "range": [0, 255],
                  "scaling": "none outside the model: its first layer normalises"},
        "output": {"names": OUTPUT_NAMES, "shape": [None, len(info.class_names)],
                   "dtype": "float32", "meaning": "class probabilities in labels.txt order"},
        "preprocessing": info.preprocessing.to_dict(), "tta": info.tta,
        "tta_inside_exported_graph": info.tta != "none",
        "compute_dtype": "float32" + (" (the checkpoint computes in mixed precision)"
                                      if mixed else ""),
    }
    atomic_write_bytes(out_dir / "labels.txt", ("\n".join(info.class_names) + "\n").encode())
    atomic_write_bytes(out_dir / "preprocessing.json", json.dumps(described, indent=2).encode())


def write_notes(out_dir: Path, fmt: str, figures: dict | None, info, artefacts: dict) -> None:
    """parity.json (one entry per format whose model is in the folder) and README.md;
    ``figures`` None drops ``fmt``'s entry."""
    try:
        checks = json.loads((out_dir / "parity.json").read_text())
    except (OSError, ValueError):
        checks = {}
    checks = {k: v for k, v in checks.items() if k in artefacts and k != fmt
              and (out_dir / artefacts[k]).exists()}
    if figures is not None:
        checks[fmt] = figures
    atomic_write_bytes(out_dir / "parity.json",
                       json.dumps(checks, indent=2, sort_keys=True).encode())
    atomic_write_bytes(out_dir / "README.md", readme_text(info, checks).encode())


def preprocessing_snippet(policy: Preprocessing) -> str:
    """About ten lines of Pillow + numpy that turn an image file into what the app feeds the model
    (``training.preprocessing.load_image``) for ``policy``: uint8 (height, width, 3) RGB."""
    size, grey = tuple(policy.size), policy.pad_value
    resize = {
        "crop": f"image = ImageOps.fit(image, {size}, method=Image.Resampling.LANCZOS)",
        "pad": f"image = ImageOps.pad(image, {size}, method=Image.Resampling.LANCZOS, "
               f"color=({grey}, {grey}, {grey}))",
        "squash": f"image = image.resize({size}, Image.Resampling.LANCZOS)",
    }[policy.resize]
    return f"""import numpy as np
from PIL import Image, ImageOps

def prepare(path):
    image = ImageOps.exif_transpose(Image.open(path))  # first frame, turned upright
    if image.mode in ("P", "RGB", "L", "1") and "transparency" in image.info:
        image = image.convert("RGBA")  # a palette or colour-key transparency
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):  # transparency on a grey background
        background = Image.new("RGBA", image.size, ({grey}, {grey}, {grey}, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    image = image.convert("RGB")
    if image.size != {size}:
        {resize}
    return np.asarray(image, dtype=np.uint8)  # (height, width, 3) RGB 0-255
"""


_RUN = {
    "keras": """import keras
model = keras.saving.load_model("{file}", safe_mode=True)
probs = model.predict_on_batch(x)""",
    "savedmodel": """import tensorflow as tf
model = tf.saved_model.load("{file}")  # TensorFlow reads "[" or "]" in the path as a pattern
probs = model.serve(x).numpy()""",
    "tflite": """import tensorflow as tf  # or: from ai_edge_litert.interpreter import Interpreter
interpreter = tf.lite.Interpreter(model_path="{file}")
source = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(source, x.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(source, x)
interpreter.invoke()
probs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])""",
    "onnx": """import onnxruntime
session = onnxruntime.InferenceSession("{file}", providers=["CPUExecutionProvider"])
probs = session.run(None, {{"image": x}})[0]""",
}


def readme_text(info, checks: dict) -> str:
    """The export folder's README for the formats in ``checks`` (format -> parity figures)."""
    policy = info.preprocessing
    h, w, _ = info.input_shape
    tta = ("The app averages each image with its mirror image (flip test-time augmentation); "
           "that is already inside every exported model: do not apply it again."
           if info.tta == "hflip" else "The app uses no test-time augmentation.")
    how = {"crop": "centre-cropped to the model's aspect ratio and resized",
           "pad": f"fitted inside and padded with grey {policy.pad_value}",
           "squash": "resized without keeping the aspect ratio"}[policy.resize]
    rows = []
    for fmt, p in sorted(checks.items()):
        verdict = "OK" if p["ok"] else "**FAILED: do not ship**"
        rows.append(f"| `{p['artefact']}` | {fmt} | {p['images']} ({p['sample']}) | "
                    f"{p['top1_agreement'] * 100:.2f} % | {p['max_abs_diff']:.1e} | {verdict} |")
    failed = [fmt for fmt, p in checks.items() if not p["ok"]]
    warning = (f"> **Warning:** the {', '.join(failed)} export disagrees with the app (see Parity) "
               "and must not be shipped as is.\n\n" if failed else "")
    runs = "\n\n".join(f"{fmt}:\n\n```python\n" + _RUN[fmt.split("-")[0]].format(
        file=checks[fmt]["artefact"]) + "\n```" for fmt in sorted(checks))
    return f"""# {info.name or 'checkpoint'}: exported classifier

{warning}Exported from Pixel Classifier (`python -m training export`). Files: the model (below),
`labels.txt` (class names, one per line, in output order), `preprocessing.json` (input, output
and preprocessing, machine-readable) and `parity.json` (the check below).

## Input and output

- Input (the model's only one; `image` in SavedModel and ONNX): float32 array (N, {h}, {w}, 3),
  NHWC, RGB values 0-255. Do not scale or normalise: the model's first layer does that.
- Output (its only one; `output_0` in SavedModel, `probabilities` in ONNX; `preprocessing.json`
  lists each runtime's names): float32 array (N, {len(info.class_names)}), one row per image,
  columns in `labels.txt` order: {", ".join(info.class_names)}.
- {tta}

## Preprocessing

The app opens a picture with Pillow, takes the first frame, turns it upright from its EXIF
orientation, composites transparency on grey {policy.pad_value} and converts it to RGB. Unless it
is {w}x{h} already, it is then {how} to {w}x{h}
with Lanczos resampling (resize policy `{policy.resize}`). This reproduces it (the app also scales
16-bit and float greyscale images to 8 bits, and keeps a one-pixel sliver of a picture longer
than 64:1 where padding would leave nothing of it; see `training/preprocessing.py`):

```python
{preprocessing_snippet(policy).rstrip()}
```

## Running it

From this folder, with `x = np.stack([prepare(p) for p in paths]).astype(np.float32)`:

{runs}

## Parity

After export, the exported model classified a sample of images with its own runtime and was
compared with the app's predictions. It passes with 100 % top-1 agreement and no probability
more than 1e-3 from the app's; dynamic-range int8 (`tflite-int8`), and checkpoints that compute
in mixed precision (exports compute in float32), need at least 99 % and 0.25, since their
arithmetic legitimately differs. In every format each output row must sum to 1 (within 1e-3).
The sample (named in the table) is labelled images when given (the test part of a CIFAR-10
archive; class folders: images taken evenly from all of them, which may include images the
model was trained on), else seeded synthetic colour patterns; a trained model finds those
ambiguous (near-ties), so int8 exports are better judged on real images.

| file | format | images (sample) | top-1 agreement | largest probability difference | status |
|---|---|---|---|---|---|
{chr(10).join(rows)}
"""
