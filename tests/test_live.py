"""Tests for helpers.live.LiveView: the in-place training view and its headless behaviour."""

from __future__ import annotations

import sys
import types

import keras
import numpy as np
import pytest

from helpers import live, models, train


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.random((4, 16, 16, 1), dtype=np.float32)
    return x, (x > 0.5).astype("float32")


def tiny():
    return models.build_unet((16, 16, 1), filters=2, num_layers=1)


def test_headless_from_environment(monkeypatch):
    monkeypatch.setenv("UNET_HEADLESS", "1")
    assert live._headless() and live.LiveView().show is False
    monkeypatch.setenv("UNET_HEADLESS", "0")
    assert live._headless() is ("ipykernel" not in sys.modules)


def test_interactive_view_updates_one_display_in_place(monkeypatch, data):
    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    fake = types.ModuleType("IPython.display")
    fake.display = lambda figure, display_id=False: shown.append(("display", figure)) or Handle()
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    x, y = data
    model = train.compile_model(tiny, loss="binary_crossentropy", metrics=["accuracy"], seed=0)
    view = live.LiveView(x[0], y[0], show=True)
    train.fit(model, (x, y), validation_data=(x, y), epochs=3, batch_size=2, verbose=0, live=view)
    assert [kind for kind, _ in shown] == ["display", "update", "update"]  # one figure, updated
    assert len(view.history["loss"]) == 3 and len(view.history["val_loss"]) == 3
    titles = [ax.get_title() for ax in view.figure.axes]
    assert titles[:2] == ["loss", "accuracy"] and "prediction, epoch 3" in titles


def test_headless_view_draws_once_at_the_end(monkeypatch, data):
    calls = []
    x, y = data
    view = live.LiveView(x[0], y[0], show=False)
    monkeypatch.setattr(view, "draw", lambda epoch: calls.append(epoch) or "figure")
    model = train.compile_model(tiny, loss="binary_crossentropy", seed=0)
    train.fit(model, (x, y), validation_data=(x, y), epochs=2, batch_size=2, verbose=0, live=view)
    assert calls == [1] and view.figure == "figure"  # nothing per epoch, one final figure


def test_fit_live_true_uses_the_first_validation_image(monkeypatch, data):
    x, y = data
    monkeypatch.setenv("UNET_HEADLESS", "1")
    model = train.compile_model(tiny, loss="binary_crossentropy", seed=0)
    seen = []
    monkeypatch.setattr(live.LiveView, "on_train_end", lambda self, logs=None: seen.append(self.image))
    train.fit(model, (x, y), validation_data=(x, y), epochs=1, batch_size=2, verbose=0, live=True)
    np.testing.assert_array_equal(seen[0], x[0])
    with pytest.raises(ValueError, match="live=True shows the first validation image"):
        train.fit(model, (x, y), epochs=1, batch_size=2, verbose=0, live=True)


def test_callbacks_live_view_finds_the_validation_image_given_to_model_fit(monkeypatch, data):
    """The notebook's call: model.fit(..., validation_data=..., callbacks=train.callbacks(live=True))."""
    x, y = data
    model = train.compile_model(tiny, loss="binary_crossentropy", seed=0)
    found = train.callbacks(live=True)
    view = found[-1]
    assert isinstance(view, live.LiveView) and view.image is None
    monkeypatch.setattr(view, "draw", lambda epoch: "figure")
    model.fit(x, y, validation_data=(x[1:], y[1:]), epochs=2, batch_size=2, verbose=0, callbacks=found)
    np.testing.assert_array_equal(view.image, x[1])
    np.testing.assert_array_equal(view.truth, y[1])
    assert "evaluate" not in vars(model) and view.figure == "figure"  # the watching wrapper is gone


def test_live_view_without_validation_draws_the_curves_only(data):
    x, y = data
    model = train.compile_model(tiny, loss="binary_crossentropy", seed=0)
    view = live.LiveView(show=False)
    model.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[view])
    assert view.image is None and [ax.get_title() for ax in view.figure.axes] == ["loss"]


def test_bad_tile_is_refused():
    with pytest.raises(ValueError, match=r"one tile \(H, W, C\).*x_val\[0\], y_val\[0\]"):
        live.LiveView(np.zeros((16, 16)), np.zeros((16, 16, 1)))
