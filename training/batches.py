"""What training sees: augmented, shuffled batches, each epoch a pure function of (seed, epoch)."""
from __future__ import annotations

import math

import numpy as np


def augment(images: np.ndarray, rng: np.random.Generator, flip: bool, translate: int,
            cutout: int = 0, flip_mask: np.ndarray | None = None) -> np.ndarray:
    """Random flips (or the given ``flip_mask``), shifts of up to ``translate`` px and ``cutout``
    squares, vectorised."""
    out = images.copy()
    if flip:
        mask = rng.random(len(out)) < 0.5 if flip_mask is None else flip_mask
        out[mask] = out[mask, :, ::-1]
    if translate > 0:
        t = translate
        padded = np.pad(out, ((0, 0), (t, t), (t, t), (0, 0)), mode="reflect")
        h, w = images.shape[1:3]
        dy = rng.integers(0, 2 * t + 1, len(out))
        dx = rng.integers(0, 2 * t + 1, len(out))
        for oy in range(2 * t + 1):
            for ox in range(2 * t + 1):
                sel = np.flatnonzero((dy == oy) & (dx == ox))
                if len(sel):
                    out[sel] = padded[sel, oy:oy + h, ox:ox + w]
    if cutout > 0:
        h, w = images.shape[1:3]
        cy = rng.integers(0, h, len(out))[:, None]
        cx = rng.integers(0, w, len(out))[:, None]
        # a cutout x cutout square around (cy, cx), clipped at the image's edges
        dy = np.arange(h)[None, :] - cy
        dx = np.arange(w)[None, :] - cx
        rows = (dy >= -(cutout // 2)) & (dy < cutout - cutout // 2)
        cols = (dx >= -(cutout // 2)) & (dx < cutout - cutout // 2)
        out[rows[:, :, None] & cols[:, None, :]] = 128
    return out


def training_batches(x, y, num_classes, config, first_epoch: int = 0, teacher=None):
    """A Keras ``PyDataset`` over ``x, y`` (uint8 images, int labels) for ``config`` (a TrainConfig).
    With ``teacher`` (uint8 images -> probabilities), each target is ``1 - config.distill`` of
    the one-hot label plus ``config.distill`` of the teacher's view of the augmented image."""
    import keras

    class AugmentedBatches(keras.utils.PyDataset):
        """Shuffled, freshly augmented batches each epoch; labels one-hot for label smoothing.

        Epoch ``e`` is a pure function of (seed, e), so a resumed run sees the same batches as
        one that was never interrupted. With ``alternate_flip`` (airbench) each image is flipped
        at random in the first epoch and then in every other epoch, so consecutive epochs show
        both of its sides.
        """

        def __init__(self):
            super().__init__()
            self.epoch = first_epoch
            self.flipped_first = np.random.default_rng([config.seed, 1 << 20]).random(len(x)) < 0.5
            self._prepare()

        def __len__(self):
            return math.ceil(len(x) / config.batch_size)

        def _prepare(self):
            rng = np.random.default_rng([config.seed, self.epoch])
            order = rng.permutation(len(x))
            mask = None
            if config.alternate_flip:
                mask = self.flipped_first[order] ^ bool(self.epoch % 2)
            self.xs = augment(x[order], rng, config.flip, config.translate, config.cutout, mask)
            self.ys = np.eye(num_classes, dtype=np.float32)[y[order]]

        def on_epoch_end(self):
            self.epoch += 1
            self._prepare()

        def __getitem__(self, i):
            s = slice(i * config.batch_size, (i + 1) * config.batch_size)
            if teacher is None:
                return self.xs[s].astype(np.float32), self.ys[s]
            soft = np.asarray(teacher(self.xs[s]), np.float32)
            return self.xs[s].astype(np.float32), (1 - config.distill) * self.ys[s] + config.distill * soft

    return AugmentedBatches()
