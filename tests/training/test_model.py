"""The network's airbench options: a whitening first layer that really whitens, and a checkpoint
whose architecture is read back exactly (fine-tuning rebuilds the same network)."""
from types import SimpleNamespace

import numpy as np

from training.model import whitening_kernel
from training.model import architecture_of, network
from training.train import TrainConfig


def test_the_whitening_layer_decorrelates_2x2_patches_to_unit_variance(rng):
    import keras

    # correlated colours and neighbours, as in photos: smooth random fields
    base = rng.normal(128, 40, (200, 8, 8, 1)).repeat(4, axis=1).repeat(4, axis=2)
    images = np.clip(base + rng.normal(0, 8, (200, 32, 32, 3)), 0, 255).astype(np.uint8)
    kernel = whitening_kernel(images)
    assert kernel.shape == (2, 2, 3, 24)
    x = (images.astype(np.float32) - np.float32((125.3, 123.0, 113.9))) / np.float32((63.0, 62.1, 66.7))
    out = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="valid"))
    flat = out.reshape(-1, 24)[:, :12].astype(np.float64)  # the other 12 are their negatives
    covariance = flat.T @ flat / len(flat)
    # eps = 5e-4 shrinks the smallest directions a little; the rest are exactly white
    np.testing.assert_allclose(np.diag(covariance), 1.0, atol=0.2)
    off = covariance - np.diag(np.diag(covariance))
    assert np.abs(off).max() < 1e-3
    np.testing.assert_allclose(out[..., 12:], -out[..., :12], atol=1e-4)


def test_whitening_is_estimated_from_all_classes_of_a_class_sorted_set(rng):
    import keras

    # a class-folder set is sorted by class: 300 smooth dark images, then 300 noisy bright ones
    smooth = rng.normal(60, 20, (300, 4, 4, 3)).repeat(8, axis=1).repeat(8, axis=2)
    noisy = rng.normal(190, 50, (300, 32, 32, 3))
    images = np.clip(np.concatenate([smooth, noisy]), 0, 255).astype(np.uint8)
    kernel = whitening_kernel(images, limit=100, seed=3)
    x = (images.astype(np.float32) - np.float32((125.3, 123.0, 113.9))) / np.float32((63.0, 62.1, 66.7))
    out = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="valid"))
    flat = out.reshape(-1, 24)[:, :12].astype(np.float64)
    variances = np.diag(flat.T @ flat / len(flat))
    # white on the whole set, not only on its first class (the first 100 images alone give
    # variances of 1.1 to 197 here)
    np.testing.assert_allclose(variances, 1.0, atol=0.35)
    np.testing.assert_array_equal(kernel, whitening_kernel(images, limit=100, seed=3))


def test_an_airbench_network_reports_its_own_architecture():
    config = TrainConfig(widths=(4, 8, 8), stem=0, activation="relu", bn_momentum=0.4,
                         bn_scale=False, logit_scale=1 / 9, whiten=True)
    model = network(config, 3, (32, 32, 3), "float32")
    got = architecture_of(model)
    assert got == {"stem": 0, "widths": (4, 8, 8), "residual": False, "activation": "relu",
                   "bn_momentum": 0.4, "bn_scale": False, "logit_scale": 1 / 9, "whiten": True}
    assert not model.get_layer("whiten_conv").trainable_weights
    plain = architecture_of(network(TrainConfig(widths=(4, 8, 8), stem=4), 3, (32, 32, 3), "float32"))
    assert plain["activation"] == "gelu" and plain["bn_scale"] and not plain["whiten"]


def test_lookahead_pulls_weights_into_their_average_more_as_the_run_goes_on():
    import keras

    from training.callbacks import Lookahead

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    kernel = model.weights[0]
    kernel.assign(np.zeros((2, 1), np.float32))
    callback = Lookahead(every=2, decay=0.5, progress=SimpleNamespace(stopped=False),
                         total_steps=4)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_train_batch_begin(0)  # the average starts from the weights the run starts with
    kernel.assign(np.ones((2, 1), np.float32))  # an optimiser step moved the weights
    callback.on_train_batch_end(0)  # step 1: not a sync step
    assert kernel.numpy()[0, 0] == 1.0
    callback.on_train_batch_end(1)  # step 2 of 4: d = 0.5**2 * (2/4)**3 = 1/32
    np.testing.assert_allclose(kernel.numpy(), 31 / 32)
    kernel.assign(np.full((2, 1), 2.0, np.float32))
    callback.on_train_batch_end(2)
    callback.on_train_batch_end(3)  # the last step: d = 0.25, the average is left in place
    np.testing.assert_allclose(kernel.numpy(), 0.25 * 31 / 32 + 0.75 * 2.0, rtol=1e-6)


def test_batch_norm_biases_learn_bias_lr_scale_times_faster_and_nothing_else_does():
    import keras

    from training.optim import make_optimizer

    x = np.random.default_rng(0).uniform(0, 255, (32, 32, 32, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(32) % 3]
    moved = {}
    for scale in (1.0, 64.0):
        config = TrainConfig(widths=(4, 8, 8), stem=0, bn_scale=False, momentum=0.0,
                             weight_decay=0.0, lr=0.01, bias_lr_scale=scale)
        keras.utils.set_random_seed(0)
        model = network(config, 3, (32, 32, 3), "float32")
        model.compile(optimizer=make_optimizer(config, 10), loss="categorical_crossentropy")
        before = [w.copy() for w in model.get_weights()]
        model.train_on_batch(x, y)  # one step of plain SGD from the same start
        moved[scale] = {v.path: np.abs(a - b).max() for v, a, b in
                        zip(model.weights, model.get_weights(), before)}
    betas = [p for p in moved[1.0] if p.endswith("beta")]
    assert betas
    for path, step in moved[1.0].items():
        want = 64 * step if path in betas else step
        np.testing.assert_allclose(moved[64.0][path], want, rtol=1e-3, atol=1e-7)


def test_dirac_start_passes_channels_through_and_the_triangle_schedule_peaks_then_ends_at_zero():
    import keras

    from training.model import dirac_init
    from training.optim import make_schedule

    config = TrainConfig(widths=(4, 8, 8), stem=0, whiten=True, init="torch", dirac=True,
                         schedule="triangle", lr=1.0, warmup=0.25)
    model = network(config, 3, (32, 32, 3), "float32")
    assert dirac_init(model) == 6
    conv = model.get_layer("group2_b_conv")  # 8 -> 8 channels: all identity
    x = np.random.default_rng(1).normal(size=(2, 7, 7, 8)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv(x)), x, atol=1e-6)
    first = model.get_layer("group1_a_conv").get_weights()[0]  # 24 -> 4: all four filters
    assert first[1, 1, :4, :4].tolist() == np.eye(4).tolist()
    # PyTorch's default start: uniform within +-1/sqrt(fan_in)
    head = model.get_layer("logits").get_weights()[0]
    assert np.abs(head).max() <= 1 / np.sqrt(8) and np.abs(head).max() > 0.5 / np.sqrt(8)
    schedule = make_schedule(config, 100)
    lrs = [float(schedule(step)) for step in (0, 25, 50, 100)]
    np.testing.assert_allclose(lrs, [0.2, 1.0, 2 / 3, 0.0], atol=1e-6)


def test_muon_steps_keep_kernels_at_a_fixed_norm_and_follow_orthogonalised_gradients():
    import keras

    from training.optim import make_optimizer, orthogonalise

    g = np.random.default_rng(0).normal(size=(576, 64)).astype(np.float32)
    g[:, 0] *= 50  # one dominant direction: plain SGD would follow mostly that one
    singular = np.linalg.svd(keras.ops.convert_to_numpy(orthogonalise(g)), compute_uv=False)
    assert singular.min() > 0.5 and singular.max() < 1.5

    config = TrainConfig(widths=(4, 8, 8), stem=0, bn_scale=False, optimizer="muon", lr=0.5,
                         muon_lr=0.1, schedule="triangle", warmup=0.0)
    keras.utils.set_random_seed(0)
    model = network(config, 3, (32, 32, 3), "float32")
    model.compile(optimizer=make_optimizer(config, 4), loss="categorical_crossentropy")
    kernel = model.get_layer("group2_b_conv").kernel
    kernel.assign(kernel.numpy() * 7.0)  # any norm: Muon resets it to sqrt(out channels)
    x = np.random.default_rng(1).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    before = kernel.numpy().copy()
    model.train_on_batch(x, y)
    after = kernel.numpy()
    rescaled = before * np.sqrt(8) / np.linalg.norm(before)
    step = (rescaled - after).reshape(-1, 8)  # lr (0.2 * 0.1 on the first step) x orthogonal
    singular = np.linalg.svd(step / (0.2 * 0.1), compute_uv=False)
    assert singular.min() > 0.4 and singular.max() < 1.6
