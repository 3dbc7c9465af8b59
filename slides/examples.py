"""Worked examples for the slides, computed with the same Keras layers the notebooks use.

Every number shown on a worked-example slide comes from a function here, and
``tests/test_slides.py`` checks these functions against hand-derived values, so the
deck can never show a number that Keras would not produce.

Examples
--------
>>> from slides import examples
>>> examples.max_pooling()["output"].tolist()
[[10.0, 14.0], [2.0, -3.0]]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

MAX_POOL_INPUT = np.array(
    [[10, 6, 6, 0], [5, -3, 14, -2], [0, 2, -7, -3], [0, 0, -5, -5]], dtype="float32"
)
"""The 4x4 input of the max-pooling slide."""

TRANSPOSED_INPUT = np.array([[1, 2], [3, 4]], dtype="float32")
"""The 2x2 input of the transposed-convolution slide."""

TRANSPOSED_KERNEL = np.array([[1, 0, -1], [2, 1, 0], [0, 1, 1]], dtype="float32")
"""The 3x3 kernel of the transposed-convolution slide (small integers, so the sums are easy)."""

PADDING_IMAGE = np.array(
    [[1, 2, 0, 3], [4, 1, 2, 0], [0, 3, 1, 2], [2, 0, 4, 1]], dtype="float32"
)
"""The 4x4 image of the padding slide."""

PADDING_KERNEL = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype="float32")
"""A 3x3 'plus' kernel: each output is the sum of a pixel and its four neighbours."""


def _as_batch(image: np.ndarray) -> np.ndarray:
    """Turn an HxW array into the 1xHxWx1 NHWC batch that Keras layers expect."""
    return np.asarray(image, dtype="float32")[None, :, :, None]


def max_pooling(image: np.ndarray = MAX_POOL_INPUT) -> dict[str, np.ndarray]:
    """Apply ``keras.layers.MaxPooling2D(2)`` (2x2 window, stride 2) to a 2-D array.

    Parameters
    ----------
    image : np.ndarray
        An HxW array with even H and W.

    Returns
    -------
    dict
        ``input`` (HxW) and ``output`` (H/2 x W/2), both float32.

    Examples
    --------
    >>> max_pooling()["output"].shape
    (2, 2)
    """
    image = np.asarray(image, dtype="float32")
    if image.ndim != 2 or image.shape[0] % 2 or image.shape[1] % 2:
        raise ValueError(f"max_pooling needs a 2-D array with even sides, got shape {image.shape}")
    pooled = keras.layers.MaxPooling2D(pool_size=2)(_as_batch(image))
    return {"input": image, "output": keras.ops.convert_to_numpy(pooled)[0, :, :, 0]}


def transposed_conv_matrix(kernel: np.ndarray, input_size: int = 2) -> np.ndarray:
    """Arrange a kxk kernel into the matrix of a stride-1 'valid' transposed convolution.

    Column ``c`` of the matrix belongs to input pixel ``(i, j)`` with ``c = i * input_size + j``
    (row-major flattening). That pixel stamps a copy of the kernel, scaled by its value, onto
    the output with its top-left corner at ``(i, j)``; the column holds that stamp, flattened.
    The output side is ``input_size + k - 1`` (2 + 3 - 1 = 4 on the slide), so the matrix is
    ``(output_side**2, input_size**2)`` = 16x4. It is exactly the transpose of the 4x16 matrix of
    a 'valid' 3x3 convolution from 4x4 down to 2x2, hence the name.

    Parameters
    ----------
    kernel : np.ndarray
        A square kxk kernel.
    input_size : int
        Side of the square input.

    Returns
    -------
    np.ndarray
        float32 matrix of shape ``((input_size + k - 1)**2, input_size**2)``.

    Examples
    --------
    >>> transposed_conv_matrix(np.ones((3, 3))).shape
    (16, 4)
    """
    kernel = np.asarray(kernel, dtype="float32")
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square 2-D array, got shape {kernel.shape}")
    k = kernel.shape[0]
    out = input_size + k - 1
    matrix = np.zeros((out * out, input_size * input_size), dtype="float32")
    for i in range(input_size):
        for j in range(input_size):
            stamp = np.zeros((out, out), dtype="float32")
            stamp[i : i + k, j : j + k] = kernel
            matrix[:, i * input_size + j] = stamp.ravel()
    return matrix


def convolution_matrix(kernel: np.ndarray, image_size: int = 4) -> np.ndarray:
    """Matrix of a stride-1 'valid' convolution (Keras' cross-correlation) on a square image.

    Row ``r`` belongs to output pixel ``(i, j)`` with ``r = i * out + j``; it holds the kernel
    laid over the image at offset ``(i, j)``, flattened.

    Parameters
    ----------
    kernel : np.ndarray
        A square kxk kernel.
    image_size : int
        Side of the square input image.

    Returns
    -------
    np.ndarray
        float32 matrix of shape ``((image_size - k + 1)**2, image_size**2)``.

    Examples
    --------
    >>> convolution_matrix(np.ones((3, 3))).shape
    (4, 16)
    """
    kernel = np.asarray(kernel, dtype="float32")
    k = kernel.shape[0]
    out = image_size - k + 1
    if out < 1:
        raise ValueError(f"a {k}x{k} kernel does not fit in a {image_size}x{image_size} image")
    matrix = np.zeros((out * out, image_size * image_size), dtype="float32")
    for i in range(out):
        for j in range(out):
            window = np.zeros((image_size, image_size), dtype="float32")
            window[i : i + k, j : j + k] = kernel
            matrix[i * out + j] = window.ravel()
    return matrix


def transposed_convolution(
    image: np.ndarray = TRANSPOSED_INPUT, kernel: np.ndarray = TRANSPOSED_KERNEL
) -> dict[str, np.ndarray]:
    """Compute a transposed convolution twice: as a matrix product and with Keras.

    The configuration is ``Conv2DTranspose(1, 3, strides=1, padding="valid", use_bias=False)``:
    a 2x2 input becomes a (2 + 3 - 1) = 4x4 output.

    Parameters
    ----------
    image : np.ndarray
        Square input (2x2 on the slide).
    kernel : np.ndarray
        Square kernel (3x3 on the slide).

    Returns
    -------
    dict
        ``input``, ``kernel``, ``vector`` (input flattened, n*n x 1), ``matrix`` (16x4),
        ``product`` (matrix @ vector reshaped to 4x4), ``keras`` (Conv2DTranspose output, 4x4)
        and ``conv_matrix`` (the 4x16 matrix of the matching 'valid' convolution).

    Examples
    --------
    >>> result = transposed_convolution()
    >>> bool(np.allclose(result["product"], result["keras"]))
    True
    """
    image = np.asarray(image, dtype="float32")
    kernel = np.asarray(kernel, dtype="float32")
    n, k = image.shape[0], kernel.shape[0]
    matrix = transposed_conv_matrix(kernel, input_size=n)
    vector = image.reshape(-1, 1)
    product = (matrix @ vector).reshape(n + k - 1, n + k - 1)

    layer = keras.layers.Conv2DTranspose(1, k, strides=1, padding="valid", use_bias=False)
    layer.build((1, n, n, 1))
    # Conv2DTranspose kernels are (height, width, output channels, input channels).
    layer.set_weights([kernel[:, :, None, None]])
    from_keras = keras.ops.convert_to_numpy(layer(_as_batch(image)))[0, :, :, 0]
    return {
        "input": image,
        "kernel": kernel,
        "vector": vector,
        "matrix": matrix,
        "product": product,
        "keras": from_keras,
        "conv_matrix": convolution_matrix(kernel, image_size=n + k - 1),
    }


def same_padding(
    image: np.ndarray = PADDING_IMAGE, kernel: np.ndarray = PADDING_KERNEL
) -> dict[str, np.ndarray]:
    """Show that zero-padding by one pixel lets a 3x3 convolution keep the image size.

    Parameters
    ----------
    image : np.ndarray
        HxW image (4x4 on the slide).
    kernel : np.ndarray
        3x3 kernel.

    Returns
    -------
    dict
        ``input`` (4x4), ``padded`` (6x6, zeros around), ``valid`` (Keras ``padding="valid"``
        on the unpadded image, 2x2), ``valid_on_padded`` (Keras ``padding="valid"`` on the
        padded image, 4x4) and ``same`` (Keras ``padding="same"`` on the unpadded image, 4x4).

    Examples
    --------
    >>> same_padding()["padded"].shape
    (6, 6)
    """
    image = np.asarray(image, dtype="float32")
    kernel = np.asarray(kernel, dtype="float32")
    if kernel.shape != (3, 3):
        raise ValueError(f"same_padding is the 3x3 story; got a kernel of shape {kernel.shape}")
    padded = np.pad(image, 1, mode="constant", constant_values=0)

    def conv(array: np.ndarray, padding: str) -> np.ndarray:
        layer = keras.layers.Conv2D(1, 3, padding=padding, use_bias=False)
        layer.build((1, *array.shape, 1))
        layer.set_weights([kernel[:, :, None, None]])
        return keras.ops.convert_to_numpy(layer(_as_batch(array)))[0, :, :, 0]

    return {
        "input": image,
        "padded": padded,
        "valid": conv(image, "valid"),
        "valid_on_padded": conv(padded, "valid"),
        "same": conv(image, "same"),
    }


def unet_output_size(input_size: int = 572, padding: str = "valid", depth: int = 4) -> int:
    """Side of the output of a paper-style U-Net, read off a 1-filter Keras model.

    The model has the paper's layout (two 3x3 convolutions per level, 2x2 max pooling,
    2x2 stride-2 transposed convolutions, centre-cropped skip connections) but one filter per
    layer, so it is cheap to build; only the shapes matter.

    Parameters
    ----------
    input_size : int
        Side of the square input (572 in the paper).
    padding : str
        ``"valid"`` (paper) or ``"same"``.
    depth : int
        Number of poolings.

    Returns
    -------
    int
        Side of the output (388 for the paper's 572 with valid padding).

    Examples
    --------
    >>> unet_output_size(572, "valid")
    388
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    if padding == "same" and input_size % 2**depth:
        raise ValueError(
            f"with 'same' padding the input side must be divisible by 2**depth = {2**depth}; "
            f"got {input_size} (try {input_size - input_size % 2**depth})"
        )
    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 1))
    x = inputs
    skips = []
    for _ in range(depth):
        x = layers.Conv2D(1, 3, padding=padding)(x)
        x = layers.Conv2D(1, 3, padding=padding)(x)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(1, 3, padding=padding)(x)
    x = layers.Conv2D(1, 3, padding=padding)(x)
    for skip in reversed(skips):
        x = layers.Conv2DTranspose(1, 2, strides=2)(x)
        extra = skip.shape[1] - x.shape[1]  # what 'valid' convolutions have trimmed
        if extra:
            half = (extra // 2, extra - extra // 2)
            skip = layers.Cropping2D((half, half))(skip)
        x = layers.Concatenate()([skip, x])
        x = layers.Conv2D(1, 3, padding=padding)(x)
        x = layers.Conv2D(1, 3, padding=padding)(x)
    return int(keras.Model(inputs, x).output_shape[1])


def jaccard(x: np.ndarray, y: np.ndarray) -> float:
    """Jaccard index |X∩Y| / (|X| + |Y| - |X∩Y|) of two binary masks, over the whole image.

    Parameters
    ----------
    x, y : np.ndarray
        Binary masks of the same shape.

    Returns
    -------
    float
        The index in [0, 1]; 1.0 when both masks are empty.

    Examples
    --------
    >>> jaccard(np.array([1, 1, 0]), np.array([0, 1, 1]))
    0.3333333333333333
    """
    x, y = np.asarray(x, bool), np.asarray(y, bool)
    if x.shape != y.shape:
        raise ValueError(f"masks differ in shape: {x.shape} vs {y.shape}")
    intersection = np.logical_and(x, y).sum()
    denominator = x.sum() + y.sum() - intersection
    return 1.0 if denominator == 0 else float(intersection / denominator)


def describe_augmentation(args: dict) -> str:
    """One line for a slide that spells out ``data_gen_args``, e.g. ``helpers.augment.ORIGINAL_ARGS``.

    The slides never type augmentation values themselves: they show the notebooks' dictionaries
    (:data:`helpers.augment.ORIGINAL_ARGS`, :data:`helpers.augment.DEFAULT_ARGS`) through this.

    Parameters
    ----------
    args : dict
        ``data_gen_args`` keys as :func:`helpers.augment.get_augmented` takes them; keys left out
        are off.

    Returns
    -------
    str
        E.g. ``"rotation ±R°, shift ±S%, shear ±H°, zoom L–U, horizontal and vertical flips,
        reflect padding"``, leaving out what is off.

    Examples
    --------
    >>> from helpers import augment
    >>> describe_augmentation({**augment.NO_AUGMENTATION, "horizontal_flip": True})
    'horizontal flips, reflect padding'
    """
    parts = []
    if args.get("rotation_range"):
        parts.append(f"rotation ±{args['rotation_range']:g}°")
    shifts = args.get("width_shift_range", 0.0), args.get("height_shift_range", 0.0)
    if shifts[0] == shifts[1] and shifts[0]:
        parts.append(f"shift ±{shifts[0]:.0%}")
    elif any(shifts):
        parts.append(f"shift ±{shifts[0]:.0%} (x), ±{shifts[1]:.0%} (y)")
    if args.get("shear_range"):
        parts.append(f"shear ±{args['shear_range']:g}°")
    zoom = args.get("zoom_range", 0.0)
    low, high = (1 - zoom, 1 + zoom) if np.isscalar(zoom) else zoom
    if (low, high) != (1, 1):
        parts.append(f"zoom {low:g}–{high:g}")
    flips = [axis for axis in ("horizontal", "vertical") if args.get(f"{axis}_flip")]
    if flips:
        parts.append(f"{' and '.join(flips)} flips")
    parts.append(f"{args.get('fill_mode', 'reflect')} padding")
    return ", ".join(parts)
