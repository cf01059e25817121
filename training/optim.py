"""The optimiser of a training run: Nesterov SGD with decoupled weight decay and a learning-rate
schedule; from airbench, a larger learning rate for batch-norm biases and Muon steps for the
3x3 convolution kernels (``optimizer="muon"``, the fast recipe's).

Built fresh for each run and never saved inside a checkpoint, so nothing here has to load in
safe mode.
"""
from __future__ import annotations


def make_optimizer(config, total_steps: int):
    """The optimiser ``config`` (a ``TrainConfig``) asks for, over ``total_steps`` steps."""
    import keras

    schedule = make_schedule(config, total_steps)
    kwargs = dict(momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay)
    if config.optimizer == "muon":
        return _muon_sgd_class()(schedule, bias_scale=config.bias_lr_scale,
                                 muon_lr=config.muon_lr / config.lr,
                                 muon_momentum=config.muon_momentum, **kwargs)
    if config.optimizer != "sgd":
        raise ValueError(f"unknown optimiser {config.optimizer!r}")
    if config.bias_lr_scale == 1.0:
        return keras.optimizers.SGD(schedule, **kwargs)
    return _bias_scaled_sgd_class()(schedule, bias_scale=config.bias_lr_scale, **kwargs)


def make_schedule(config, total_steps: int):
    """"cosine": linear warm-up from lr/10 over ``warmup`` of the steps, then cosine decay to 0
    (Keras ``CosineDecay``). "triangle" (airbench): linear from lr/5 up to lr at ``warmup`` of
    the steps, then linear down to 0 (with ``warmup`` 0: one step at lr/5, then the decay)."""
    import keras

    warm = max(1, int(total_steps * config.warmup))
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.lr * 0.1, max(total_steps - warm, 1), alpha=0.0, warmup_target=config.lr,
            warmup_steps=warm)
    if config.schedule == "triangle":
        return _triangle_class()(config.lr, warm, total_steps)
    raise ValueError(f"unknown learning-rate schedule {config.schedule!r}")


def _triangle_class():
    import keras

    class Triangle(keras.optimizers.schedules.LearningRateSchedule):
        """lr/5 -> lr linearly over ``warm`` steps, then -> 0 linearly at ``total`` steps."""

        def __init__(self, peak: float, warm: int, total: int):
            self.peak, self.warm, self.total = float(peak), int(warm), int(max(total, warm + 1))

        def __call__(self, step):
            from keras import ops
            step = ops.cast(step, "float32")
            up = 0.2 + 0.8 * step / self.warm
            down = (self.total - step) / (self.total - self.warm)
            return self.peak * ops.maximum(ops.where(step < self.warm, up, down), 0.0)

        def get_config(self):
            return {"peak": self.peak, "warm": self.warm, "total": self.total}

    return Triangle


def _bias_scaled_sgd_class():
    import keras

    class BiasScaledSGD(keras.optimizers.SGD):
        """SGD whose batch-norm biases (``beta``) move ``bias_scale`` times faster: their
        gradients are scaled, which for SGD with momentum is the same as scaling their learning
        rate. Decoupled weight decay is not scaled (as in airbench)."""

        def __init__(self, learning_rate, bias_scale: float = 64.0, **kwargs):
            super().__init__(learning_rate, **kwargs)
            self.bias_scale = float(bias_scale)

        def _backend_apply_gradients(self, grads, trainable_variables):
            scaled = [g * self.bias_scale if g is not None and _is_norm_bias(v) else g
                      for g, v in zip(grads, trainable_variables)]
            return super()._backend_apply_gradients(scaled, trainable_variables)

        def get_config(self):
            return {**super().get_config(), "bias_scale": self.bias_scale}

    return BiasScaledSGD


def _muon_sgd_class():
    from keras import ops

    class MuonSGD(_bias_scaled_sgd_class()):
        """airbench94_muon's optimiser: 3x3 convolution kernels take Muon steps, everything
        else (batch-norm biases, the last layer) Nesterov SGD as in ``BiasScaledSGD``.

        A Muon step (Keller Jordan): Nesterov momentum on the raw gradient, the kernel rescaled
        to a fixed norm (sqrt of its output channels), then a step of ``muon_lr`` (relative to
        the schedule's learning rate) along the momentum's orthogonalisation (three quintic
        Newton-Schulz iterations: the matrix with its singular values pushed towards 1). Weight
        decay has no effect on these kernels: their norm is reset every step.
        """

        def __init__(self, learning_rate, muon_lr: float = 0.24, muon_momentum: float = 0.6,
                     **kwargs):
            super().__init__(learning_rate, **kwargs)
            self.muon_lr, self.muon_momentum = float(muon_lr), float(muon_momentum)

        def update_step(self, gradient, variable, learning_rate):
            if len(variable.shape) != 4:
                return super().update_step(gradient, variable, learning_rate)
            g = ops.cast(gradient, "float32")
            buf = self.momentums[self._get_variable_index(variable)]
            self.assign(buf, ops.add(ops.multiply(buf, self.muon_momentum), g))
            g = ops.add(g, ops.multiply(buf, self.muon_momentum))
            w = ops.cast(variable, "float32")
            out = variable.shape[-1]
            w = ops.multiply(w, (out ** 0.5) / (ops.sqrt(ops.sum(ops.square(w))) + 1e-12))
            update = ops.reshape(orthogonalise(ops.reshape(g, (-1, out))), variable.shape)
            step = ops.multiply(ops.cast(learning_rate, "float32"), self.muon_lr)
            self.assign(variable, ops.cast(ops.subtract(w, ops.multiply(update, step)),
                                           variable.dtype))

        def get_config(self):
            return {**super().get_config(), "muon_lr": self.muon_lr,
                    "muon_momentum": self.muon_momentum}

    return MuonSGD


def orthogonalise(g, steps: int = 3):
    """Muon's quintic Newton-Schulz iteration: ``g`` (2-D) with its singular values moved into
    roughly [0.5, 1.5], the singular vectors kept (float32)."""
    from keras import ops

    a, b, c = 3.4445, -4.7750, 2.0315
    x = ops.divide(g, ops.sqrt(ops.sum(ops.square(g))) + 1e-7)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = ops.transpose(x)
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = ops.add(ops.multiply(x, a),
                    ops.matmul(ops.add(ops.multiply(gram, b),
                                       ops.multiply(ops.matmul(gram, gram), c)), x))
    return ops.transpose(x) if tall else x


def _is_norm_bias(variable) -> bool:
    path = getattr(variable, "path", "") or getattr(variable, "name", "")
    return path.endswith("beta") and "_bn" in path
