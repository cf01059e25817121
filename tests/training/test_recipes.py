"""The training recipes (training.recipes): scaled to a small data set except what the user
gave, and the bundled recipe is what made the bundled checkpoint."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from training.recipes import TrainConfig


def test_recipes_scale_to_small_data_sets_and_leave_cifar10_sized_ones_alone():
    import math

    from training.recipes import RECIPES, fit_to_data

    for name in ("fast", "fine-tune"):
        recipe = TrainConfig(**RECIPES[name])
        assert fit_to_data(recipe, 50_000) == recipe  # what the recipe was made (and timed) for
        for n_images in (20_000, 6_000, 600, 60):
            scaled = fit_to_data(recipe, n_images)
            n_train = int(n_images * (1 - recipe.val_fraction))
            steps = math.ceil(n_train / scaled.batch_size)
            assert steps >= 16 or scaled.batch_size == 8
            assert scaled.batch_size & (scaled.batch_size - 1) == 0  # a power of two
            assert scaled.lr == pytest.approx(recipe.lr * scaled.batch_size / recipe.batch_size)
            cifar_steps = math.ceil(45_000 / recipe.batch_size) * recipe.epochs
            assert steps * scaled.epochs >= min(240, cifar_steps)
            assert scaled.epochs >= recipe.epochs


def test_settings_the_user_gave_stay_and_the_rest_is_still_scaled(capsys):
    from training.recipes import RECIPES, fit_to_data
    recipe = replace(TrainConfig(**RECIPES["fast"]), epochs=3)  # --epochs 3 on 300 images
    scaled = fit_to_data(recipe, 300, keep=frozenset({"epochs"}))
    assert scaled.epochs == 3 and scaled.batch_size == 16  # not 1 step of 2000 per epoch
    assert scaled.lr == pytest.approx(recipe.lr * 16 / 2000)
    given = replace(recipe, batch_size=64, lr=0.1)
    assert fit_to_data(given, 300, keep=frozenset({"batch_size", "lr"})).batch_size == 64
    assert fit_to_data(given, 300, keep=frozenset({"batch_size", "lr"})).lr == 0.1
    from training.__main__ import main
    with pytest.raises(SystemExit):
        main(["train", "--data", "x", "--val-fraction", "-0.1"])
    assert "not a share from 0 up to (not including) 1" in capsys.readouterr().err


def test_the_bundled_recipe_is_what_made_the_bundled_checkpoint():
    """`python -m training train --recipe bundled` repeats the bundled checkpoint's run: every
    training setting in its sidecar is the recipe's (precision: the GPU run named bfloat16)."""
    from training.recipes import RECIPES

    sidecar = json.loads((Path(__file__).parents[2] / "models" / "cifar10.json").read_text())
    recorded = TrainConfig.from_dict(sidecar["config"])
    recipe = TrainConfig(**RECIPES["bundled"])
    assert replace(recorded, precision="auto") == recipe
    assert sidecar["seed"] == recipe.seed == 0


@pytest.mark.parametrize("key, value", [
    ("batch_size", "64"), ("widths", 5), ("widths", [64, 256]), ("widths", [64, 0, 256]),
    ("epochs", True), ("epochs", 0), ("epochs", 2**70), ("lr", float("nan")), ("lr", -1),
    ("val_fraction", 1.0), ("flip", "yes"), ("precision", "float64"), ("activation", ["relu"]),
    ("teachers", "a.keras"), ("distill", 2),
])
def test_a_sidecar_config_with_a_wrong_value_is_refused_in_one_line(tmp_path, capsys, key,
                                                                    value):
    """`train --config SIDECAR.json` with a hand-edited setting ("batch_size": "64") crashed
    with a traceback deep in training; it is refused before the data is read, naming the
    setting."""
    from training.__main__ import main
    sidecar = json.loads((Path(__file__).parents[2] / "models" / "cifar10.json").read_text())
    sidecar["config"][key] = value
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match=f"^config: {key} is .*, not "):
        TrainConfig.from_dict(sidecar["config"])
    assert main(["train", "--data", str(tmp_path / "never read"), "--config", str(edited),
                 "--out", str(tmp_path / "out.keras")]) == 1
    err = capsys.readouterr().err
    # (the sidecar's own check names a few settings first: "invalid sidecar: config.epochs ...")
    assert err.startswith("error: ") and f"{key} is " in err and err.count("\n") == 1, err
    assert "Traceback" not in err and not (tmp_path / "out.keras").exists()


def test_every_setting_a_config_records_is_checked_and_real_configs_pass():
    """Each field has its rule (a new setting without one would pass anything); every recipe and
    a config as the app writes it (tuples as JSON lists, ints for floats) read back equal."""
    from training.recipes import FIELD_RULES, RECIPES
    assert set(FIELD_RULES) == set(TrainConfig.__dataclass_fields__)
    for recipe in RECIPES.values():
        config = replace(TrainConfig(**recipe), teachers=("/models/a.keras",))
        assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict({"lr": 1, "epochs_run": 3, "stopped": None}).lr == 1.0
    with pytest.raises(ValueError, match="config is list"):
        TrainConfig.from_dict([1, 2])
