"""Tests for helpers.models: our build_unet and keras-unet's models under Keras 3."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from helpers import models
from helpers.models import build_unet, custom_unet, describe


def _x(h, w, c=1, n=2, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c), dtype=np.float32)


def _predict(model, x):
    """Inference by a direct call (no tf.function tracing: faster than predict for tiny tests)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture
def mixed_precision():
    """Run a test under the mixed_float16 policy and restore the previous one."""
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


# --- build_unet ------------------------------------------------------------------------------
def test_build_unet_shapes_and_components():
    model = build_unet((32, 48, 1), filters=4, num_layers=3)
    assert model.input_shape == (None, 32, 48, 1)
    assert model.output_shape == (None, 32, 48, 1)
    y = _predict(model, _x(32, 48))
    assert y.shape == (2, 32, 48, 1) and y.dtype == np.float32
    assert np.all((y > 0) & (y < 1))  # sigmoid

    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MaxPooling2D") == 3
    assert kinds.count("Conv2DTranspose") == 3
    assert kinds.count("Concatenate") == 3  # skip connections
    assert kinds.count("SpatialDropout2D") == 4  # 3 contracting levels + bottleneck
    assert kinds.count("Conv2D") == 2 * 7 + 1  # two per block + the 1x1 output
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs[:-1])
    assert convs[-1].kernel_size == (1, 1)
    # channels double on the way down: 4, 8, 16, bottleneck 32, and halve on the way up
    down = [model.get_layer(f"down{i}_conv2").filters for i in range(3)]
    assert down == [4, 8, 16] and model.get_layer("bottleneck_conv2").filters == 32
    assert [model.get_layer(f"up{i}_upconv").filters for i in (2, 1, 0)] == [16, 8, 4]
    pool = model.get_layer("down0_pool")
    assert pool.pool_size == (2, 2) and pool.strides == (2, 2)
    assert model.get_layer("probabilities").dtype_policy.compute_dtype == "float32"


def test_build_unet_any_size_divisible_by_2_to_the_depth():
    model = build_unet(filters=4, num_layers=2)  # default input (None, None, 1)
    for h, w in [(16, 16), (20, 36), (64, 8)]:
        assert _predict(model, _x(h, w, n=1)).shape == (1, h, w, 1)


def test_build_unet_multiclass_softmax_sums_to_one():
    model = build_unet((32, 32, 3), filters=4, num_layers=2, num_classes=3)
    assert model.get_layer("probabilities").get_config()["activation"] == "softmax"
    y = _predict(model, _x(32, 32, c=3))
    assert y.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(33, 32, 1), (32, 36, 1), (100, 100, 1)])
def test_build_unet_rejects_sizes_not_divisible(shape):
    with pytest.raises(ValueError, match=r"not divisible by 2\*\*num_layers = 16") as err:
        build_unet(shape, filters=4, num_layers=4)
    assert "input_shape=(None, None, 1)" in str(err.value)  # the message names the fix


@pytest.mark.parametrize(
    "kwargs", [dict(filters=0), dict(num_layers=0), dict(dropout=1.0), dict(num_classes=0),
               dict(input_shape=(32, 32))],
)
def test_build_unet_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_unet(**kwargs)


def test_build_unet_without_dropout():
    model = build_unet((16, 16, 1), filters=4, num_layers=2, dropout=0.0)
    assert "SpatialDropout2D" not in [type(layer).__name__ for layer in model.layers]


def test_build_unet_saves_and_reloads(tmp_path):
    """The .keras file reloads with plain keras.models.load_model and predicts identically."""
    keras.utils.set_random_seed(0)
    model = build_unet((None, None, 1), filters=4, num_layers=2)
    path = tmp_path / "unet.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    x = _x(16, 24)
    # predict, not reloaded(x): Keras 3.10 warns about the input structure of any reloaded
    # functional model called directly on an array (harmless)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_load_model_names_the_file(tmp_path):
    model = build_unet((None, None, 1), filters=2, num_layers=1)
    path = tmp_path / "unet.keras"
    model.save(path)
    assert models.load_model(path).input_shape == model.input_shape
    with pytest.raises(FileNotFoundError, match=r"path='.*missing\.keras': no such model file"):
        models.load_model(tmp_path / "missing.keras")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(path.read_bytes()[:2000])  # truncated copy
    with pytest.raises(ValueError, match=r"Cannot load model .*broken\.keras.*train again"):
        models.load_model(broken)


def test_load_model_needs_no_toolkit_for_k_class_models(tmp_path):
    """A model compiled with the toolkit's K-class loss and metrics loads through the core alone."""
    import subprocess
    import sys

    classes = pytest.importorskip("helpers.toolkit.classes")
    model = build_unet((None, None, 1), filters=2, num_layers=1, num_classes=3)
    model.compile("adam", loss=classes.loss_by_name("bce_jaccard", 3, include_background=False),
                  metrics=classes.class_metrics(["a", "b", "c"]))
    model.save(tmp_path / "k.keras")
    code = (f"import sys; from helpers import models; m = models.load_model({str(tmp_path / 'k.keras')!r}); "
            "assert m.output_shape[-1] == 3; assert not [n for n in sys.modules if n.startswith('helpers.toolkit')]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_build_unet_float32_output_under_mixed_precision(mixed_precision):
    model = build_unet((16, 16, 1), filters=4, num_layers=2)
    assert model.get_layer("down0_conv1").compute_dtype == "float16"
    assert model.outputs[0].dtype == "float32"
    assert _predict(model, _x(16, 16)).dtype == np.float32


def test_describe():
    model = build_unet((32, 32, 1), filters=4, num_layers=2)
    text = describe(model)
    assert text.startswith("unet: ") and f"{model.count_params():,} parameters" in text
    assert text.endswith("(None, 32, 32, 1) float32")


# --- keras-unet's models under Keras 3 ------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(use_batch_norm=False, dropout=0.0), dict(upsample_mode="simple"),
     dict(use_attention=True), dict(num_classes=3, output_activation="softmax")],
    ids=["default", "workshop", "simple-upsampling", "attention", "softmax"],
)
def test_custom_unet_builds_and_predicts(kwargs):
    model = custom_unet((32, 32, 1), filters=4, num_layers=2, **kwargs)
    y = _predict(model, _x(32, 32))
    k = kwargs.get("num_classes", 1)
    assert y.shape == (2, 32, 32, k) and np.all((y >= 0) & (y <= 1))
    if k > 1:
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def test_custom_unet_attention_has_gates():
    """use_attention=True failed under Keras 3 ('KerasTensor' has no 'get_shape'); now fixed."""
    plain = custom_unet((32, 32, 1), filters=4, num_layers=2)
    gated = custom_unet((32, 32, 1), filters=4, num_layers=2, use_attention=True)
    kinds = [type(layer).__name__ for layer in gated.layers]
    assert kinds.count("Multiply") == 2  # one gate per skip connection
    assert gated.count_params() > plain.count_params()


def test_custom_unet_any_size_and_float32_under_mixed_precision(mixed_precision):
    model = custom_unet((None, None, 1), filters=4, num_layers=2, use_batch_norm=False)
    assert model.outputs[0].dtype == "float32"
    assert _predict(model, _x(24, 40)).shape == (2, 24, 40, 1)


def test_keras_unet_models_unchanged_under_float32():
    """Under the default policy the wrapper keeps keras-unet's layers, with no extra layer."""
    model = custom_unet((32, 32, 1), filters=4, num_layers=2)
    raw = models._keras_unet().custom_unet((32, 32, 1), filters=4, num_layers=2)
    assert [type(a) for a in model.layers] == [type(b) for b in raw.layers]
    assert model.count_params() == raw.count_params()
    with warnings.catch_warnings():  # keras-unet's list-wrapped input made model(x) warn
        warnings.simplefilter("error")
        assert _predict(model, _x(32, 32)).shape == (2, 32, 32, 1)
    # model.predict (the workshop's call) returns one array although keras-unet lists its output
    assert model.predict(_x(32, 32), verbose=0).shape == (2, 32, 32, 1)


def test_the_workshop_runs_on_jax_without_tensorflow(tmp_path):
    """Colab's TPU runtimes have JAX and no TensorFlow: helpers picks JAX, keras-unet's model builds,
    the NumPy pipeline feeds fit, and a checkpointed run saves and reloads, with TensorFlow made
    unimportable (``sys.modules['tensorflow'] = None``)."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    code = f"""
import os, sys
sys.modules["tensorflow"] = None          # as if TensorFlow were not installed
os.environ.pop("KERAS_BACKEND", None)
import importlib, pkgutil
import numpy as np
import helpers
for module in pkgutil.iter_modules(helpers.__path__):  # no module needs TensorFlow to import
    if module.name != "__main__":
        importlib.import_module("helpers." + module.name)
from helpers import augment, env, losses, metrics, models, train
assert env.backend() == "jax" and not env.has_tensorflow()
x = np.random.default_rng(0).random((6, 32, 32, 1), dtype=np.float32)
y = (x > 0.5).astype("float32")
ds = augment.get_augmented(x, y, batch_size=2, crop_size=16, seed=0)
assert type(ds).__name__ == "AugmentedBatches"
model = train.compile_model(lambda: models.custom_unet((None, None, 1), filters=4, num_layers=2,
                            use_batch_norm=False), loss=losses.bce_jaccard_loss, metrics=[metrics.iou])
assert model.jit_compile is True
model, history = train.fit(model, ds, validation_data=(x, y), epochs=2, steps_per_epoch=2,
                           run_dir={str(tmp_path)!r}, verbose=0)
import keras
again = keras.models.load_model({str(tmp_path / "best.keras")!r})
assert again.predict(x, verbose=0).shape == y.shape
assert sys.modules.get("tensorflow") is None
print("jax without tensorflow: ok", env.version_line())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "jax without tensorflow: ok Keras" in done.stdout and "on JAX" in done.stdout
