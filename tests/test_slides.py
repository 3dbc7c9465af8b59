"""Tests of the slide deck: the worked examples are what Keras computes, and the deck builds offline."""

from __future__ import annotations

import json
import re
import socket
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from slides import build, examples  # noqa: E402


# --------------------------------------------------------------------------- worked examples


def test_max_pooling_gives_the_slide_numbers():
    result = examples.max_pooling()
    np.testing.assert_array_equal(result["input"], [[10, 6, 6, 0], [5, -3, 14, -2],
                                                    [0, 2, -7, -3], [0, 0, -5, -5]])
    np.testing.assert_array_equal(result["output"], [[10, 14], [2, -3]])


def test_max_pooling_matches_numpy_blocks():
    image = np.arange(36, dtype="float32").reshape(6, 6) * np.array([1, -1] * 3)
    expected = image.reshape(3, 2, 3, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(examples.max_pooling(image)["output"], expected)
    with pytest.raises(ValueError, match="even sides"):
        examples.max_pooling(np.zeros((3, 4)))


def test_transposed_convolution_matrix_equals_keras():
    result = examples.transposed_convolution()
    assert result["matrix"].shape == (16, 4)
    assert result["vector"].shape == (4, 1)
    np.testing.assert_allclose(result["product"], result["keras"], atol=1e-6)
    # Column 0 is the kernel stamped at the top-left of a 4x4 grid (input pixel (0, 0)).
    stamp = np.zeros((4, 4))
    stamp[:3, :3] = examples.TRANSPOSED_KERNEL
    np.testing.assert_array_equal(result["matrix"][:, 0], stamp.ravel())
    # "Transposed": the matrix is the transpose of the 4x4 -> 2x2 valid-convolution matrix.
    np.testing.assert_array_equal(result["matrix"], result["conv_matrix"].T)


def test_transposed_convolution_with_random_values_still_matches_keras():
    rng = np.random.default_rng(0)
    result = examples.transposed_convolution(rng.normal(size=(3, 3)), rng.normal(size=(3, 3)))
    assert result["keras"].shape == (5, 5)
    np.testing.assert_allclose(result["product"], result["keras"], atol=1e-5)


def test_convolution_matrix_matches_a_valid_keras_conv():
    image = examples.PADDING_IMAGE
    matrix = examples.convolution_matrix(examples.PADDING_KERNEL, image_size=4)
    expected = examples.same_padding()["valid"]
    np.testing.assert_allclose((matrix @ image.ravel()).reshape(2, 2), expected)


def test_padding_keeps_the_size():
    result = examples.same_padding()
    assert result["padded"].shape == (6, 6)
    assert result["valid"].shape == (2, 2)
    assert result["same"].shape == (4, 4)
    assert (result["padded"][[0, -1], :] == 0).all() and (result["padded"][:, [0, -1]] == 0).all()
    np.testing.assert_array_equal(result["padded"][1:-1, 1:-1], result["input"])
    np.testing.assert_allclose(result["same"], result["valid_on_padded"], atol=1e-6)
    # The plus-shaped kernel sums a pixel and its 4 neighbours: check one corner by hand.
    image = result["input"]
    assert result["same"][0, 0] == image[0, 0] + image[0, 1] + image[1, 0]


def test_unet_sizes_of_the_paper_and_of_same_padding():
    assert examples.unet_output_size(572, "valid") == 388
    assert examples.unet_output_size(512, "same") == 512
    with pytest.raises(ValueError, match="divisible"):
        examples.unet_output_size(500, "same")


def test_jaccard_is_per_image_over_the_region():
    x = np.zeros((4, 4), bool)
    y = np.zeros((4, 4), bool)
    x[:2], y[1:3] = True, True  # 8 and 8 pixels, 4 shared
    assert examples.jaccard(x, y) == pytest.approx(4 / (8 + 8 - 4))
    assert examples.jaccard(x, x) == 1.0
    assert examples.jaccard(np.zeros(3), np.zeros(3)) == 1.0


# --------------------------------------------------------------------------- one source of truth


def test_tiling_figure_stitches_with_helpers_tiles():
    from helpers import tiles
    from slides import figures

    image = np.random.default_rng(0).random((100, 90), dtype=np.float32)
    demo = figures.tiling_demo(image, tile=48, overlap=16)
    info = demo["info"]
    patches, expected_info = tiles.get_patches(image[..., None], 48, 32)
    assert info == expected_info
    assert demo["padded"].shape == info.padded_shape == (112, 112)
    # the border is the reflection get_patches pads with, and stitching gives the image back
    np.testing.assert_array_equal(demo["padded"], np.pad(image, ((0, 12), (0, 22)), mode="reflect"))
    np.testing.assert_array_equal(demo["restored"], image)
    np.testing.assert_array_equal(demo["window"], tiles.blend_window(48, 16))
    # sin² ramps of neighbouring tiles add up to 1 wherever two tiles overlap
    total = demo["profiles"].sum(axis=0)
    np.testing.assert_allclose(total[16:-16], 1.0)
    assert total[0] < 0.01  # one tile alone at the outer border, weighted down
    # the 0/1 checkerboard stitch is 0 or 1 in the tile centres and in between across an overlap
    two = demo["two_valued"]
    assert two[24, 24] == 0.0 and two[24, 56] == 1.0 and 0 < two[24, 40] < 1
    for own in ("blend_window", "tile_starts"):
        assert not hasattr(figures, own), f"slides/figures.py defines its own {own}"


def test_augmentation_figure_uses_helpers_augment():
    from helpers import augment
    from slides import figures

    rng = np.random.default_rng(1)
    image = rng.random((40, 40), dtype=np.float32)
    mask = rng.random((40, 40)) > 0.7
    images, masks = figures.augmented_examples(image, mask, augment.ORIGINAL_ARGS, n=3, seed=5)
    x = np.repeat(image[None, ..., None], 3, axis=0)
    y = np.repeat(mask[None, ..., None].astype("float32"), 3, axis=0)
    expected = augment.get_augmented(x, y, batch_size=3, data_gen_args=augment.ORIGINAL_ARGS, seed=5,
                                     shuffle=False, pipeline="numpy")[0]
    np.testing.assert_array_equal(images, expected[0][..., 0])
    np.testing.assert_array_equal(masks, expected[1][..., 0])
    assert set(np.unique(masks)) <= {0.0, 1.0}  # nearest neighbour: the mask stays binary
    assert not np.allclose(images[0], image)
    assert not hasattr(figures, "augment_pair")


def test_unet_figure_is_the_notebooks_drawing(monkeypatch):
    from helpers import plots
    from slides import figures

    drawn = []
    monkeypatch.setattr(plots, "plot_architecture", lambda model, **kw: drawn.append((model, kw)) or "figure")
    assert figures.fig_unet_diagram() == "figure" and len(drawn) == 1
    model, options = drawn[0]
    assert options == {}  # the notebook's default "u" layout
    blocks = plots.unet_blocks(model)
    assert [b["shape"][-1] for b in blocks] == [64, 128, 256, 512, 1024, 512, 256, 128, 64, 1]
    assert [b["level"] for b in blocks] == [0, 1, 2, 3, 4, 3, 2, 1, 0, 0]
    assert sum(b["params"] for b in blocks) == model.count_params()
    source = (REPO / "slides" / "figures.py").read_text(encoding="utf-8")
    assert "Rectangle((x, y)" not in source and "def box(" not in source  # no second U-Net drawing


def test_slides_use_the_one_palette():
    from matplotlib.colors import to_rgb

    from helpers import plots
    from slides import figures

    palette = {tuple(channel / 255 for channel in rgb) for rgb in plots.PALETTE}
    for name in ("ORANGE", "SKY", "GREEN", "YELLOW", "BLUE", "VERMILLION", "PURPLE"):
        assert getattr(figures, name) in palette, name
    for colour in figures.WINDOW_COLOURS:  # light tints of palette colours
        assert any(np.allclose(to_rgb(colour), 0.7 + 0.3 * np.array(rgb), atol=1 / 255) for rgb in palette)
    for path in (REPO / "slides").glob("*.py"):
        typed = re.findall(r"[\"']#[0-9a-fA-F]{6}[\"']", path.read_text(encoding="utf-8"))
        assert not typed, f"{path.name} types colours {typed}; take them from helpers.plots.PALETTE"


def test_slides_show_the_helpers_augmentation_values():
    from helpers import augment

    values = build.computed_values()
    assert values["augment_original"] == examples.describe_augmentation(augment.ORIGINAL_ARGS)
    assert values["augment_default"] == examples.describe_augmentation(augment.DEFAULT_ARGS)
    text = values["augment_original"]
    assert f"rotation ±{augment.ORIGINAL_ARGS['rotation_range']:g}°" in text
    assert f"shear ±{augment.ORIGINAL_ARGS['shear_range']:g}°" in text
    assert f"shift ±{augment.ORIGINAL_ARGS['width_shift_range']:.0%}" in text
    assert "horizontal and vertical flips" in text and "reflect padding" in text
    assert examples.describe_augmentation({"zoom_range": (0.5, 1.5)}) == "zoom 0.5–1.5, reflect padding"
    source = (REPO / "slides" / "slides.md").read_text(encoding="utf-8")
    assert "{{ augment_original }}" in source and "{{ augment_default }}" in source
    # no augmentation value typed into the deck's code or text
    keys = "|".join(augment.NO_AUGMENTATION)
    for path in [*(REPO / "slides").glob("*.py"), REPO / "slides" / "slides.md"]:
        typed = re.findall(rf"\b({keys})\b\s*[=:]", path.read_text(encoding="utf-8"))
        assert not typed, f"{path.name} sets {typed} itself; use helpers.augment's dictionaries"


def test_slide_overlays_are_the_notebooks_overlay():
    from helpers import plots
    from slides import figures

    rng = np.random.default_rng(2)
    image, truth, pred = rng.random((16, 16)), rng.random((16, 16)) > 0.5, rng.random((16, 16)) > 0.5
    np.testing.assert_array_equal(figures._overlay(image, truth),
                                  plots.overlay(image[..., None], truth=truth))
    np.testing.assert_array_equal(figures._overlay(image, truth, pred),
                                  plots.overlay(image[..., None], truth=truth, pred=pred))


def test_changed_figures_draw_from_the_data(tmp_path, isbi_dir):
    from slides import figures

    names = ["tiling.png", "augmentation.png", "batch.png", "jaccard.png", "isbi_data.png",
             "resolution_ceiling.png", "jaccard_trap.png", "membrane_gap.png"]
    written = figures.make_figures(names, tmp_path, isbi_dir, dpi=30)
    assert [path.name for path in written] == names
    assert all(path.stat().st_size > 1000 for path in written)


def test_resolution_ceiling_is_below_one_for_thin_membranes():
    from helpers import evaluate
    from slides import figures

    masks = np.zeros((2, 64, 64), np.float32)
    masks[:, 20:22, :] = 1  # a membrane 2 px thick: too thin for 16 px
    masks[:, :, 40:49] = 1  # and a thick one
    ceiling = figures.resolution_ceiling(masks, size=16)
    assert ceiling["small"].shape == (2, 16, 16) and set(np.unique(ceiling["small"])) <= {0.0, 1.0}
    assert ceiling["back"].shape == (2, 64, 64)
    expected = evaluate.segmentation_table(ceiling["back"].astype("float32"), masks[..., None], threshold=0.5)
    assert ceiling["iou"] == pytest.approx(expected.loc["mean", "iou_membrane"])
    assert 0 < ceiling["iou"] < 1


def test_jaccard_alone_prefers_membrane_everywhere_and_bce_the_fraction():
    from slides import figures

    masks = np.zeros((2, 16, 16), np.float32)
    masks[:, :4] = 1  # a quarter membrane
    constants = [0.05, 0.25, 0.5, 0.95, 0.999]
    curves = figures.constant_prediction_losses(masks, constants)
    best = {name: constants[int(np.argmin(curves[name]))] for name in ("Jaccard", "BCE", "BCE + Jaccard")}
    assert best == {"Jaccard": 0.999, "BCE": 0.25, "BCE + Jaccard": 0.25}
    np.testing.assert_allclose(curves["BCE + Jaccard"], curves["BCE"] + curves["Jaccard"], rtol=1e-5)


def test_one_membrane_gap_merges_two_cells_and_costs_v_rand():
    from slides import figures

    mask = np.zeros((64, 64), bool)
    mask[:, 20:23] = mask[:, 41:44] = True  # three cells side by side
    demo = figures.membrane_gap_demo(mask, half=3, margin=8)
    assert demo["truth_cells"].max() == 3 and demo["pred_cells"].max() == 2
    assert demo["pred"].sum() == mask.sum() - demo["gap_side"] * 3  # the gap crosses a 3-px membrane
    assert demo["iou"] > 0.9 and demo["v_rand"] < 0.9 and demo["v_info"] < 1


# --------------------------------------------------------------------------- Markdown handling


def test_split_slides_reads_ids_and_notes():
    source = "<!-- .slide: id=\"a\" -->\n# A\ntext\nNote:\nsay it\n---\n```\n---\n```\n# B"
    slides = build.split_slides(source)
    assert [s["attributes"] for s in slides] == ['id="a"', ""]
    assert slides[0]["body"] == "# A\ntext" and slides[0]["notes"] == "say it"
    assert "---" in slides[1]["body"]  # a separator inside a code block is not a slide break


def test_unknown_placeholder_is_an_error():
    with pytest.raises(ValueError, match="nope"):
        build.fill_placeholders("{{ nope }}", {"x": "1"})


# --------------------------------------------------------------------------- deck and notebooks aligned

#: Outline slide id -> the notebook whose sections it lists.
OUTLINES = {"notebook-1": "01_unet_introduction.ipynb", "notebook-2": "02_unet_further_topics.ipynb",
            "notebook-3": "03_after_the_workshop.ipynb"}


def _plain(text: str) -> str:
    """Text without Markdown emphasis and code marks, whitespace collapsed to single spaces."""
    return " ".join(re.sub(r"[*_`]", "", text).split())


def notebook_sections(name: str) -> list[str]:
    """The ``## `` section titles of a notebook's Markdown cells, in order, emphasis removed."""
    notebook = json.loads((REPO / "notebooks" / name).read_text(encoding="utf-8"))
    titles = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        in_code = False
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif not in_code and line.startswith("## "):
                titles.append(_plain(line[3:]))
    return titles


def _find_in_order(titles: list[str], text: str) -> list[str]:
    """The titles not found in ``text`` as whole words, each searched after the previous one."""
    missing, position = [], 0
    for title in titles:
        match = re.compile(rf"(?<!\w){re.escape(title)}(?!\w)").search(text, position)
        if match is None:
            missing.append(title)
        else:
            position = match.end()
    return missing


def _slides_by_id() -> dict[str, dict[str, str]]:
    source = (REPO / "slides" / "slides.md").read_text(encoding="utf-8")
    slides = {}
    for slide in build.split_slides(source):
        match = re.search(r'id="([^"]+)"', slide["attributes"])
        if match:
            slides[match.group(1)] = slide
    return slides


@pytest.mark.parametrize("notebook", sorted(OUTLINES.values()))
def test_every_notebook_section_is_named_in_the_slides(notebook):
    titles = notebook_sections(notebook)
    assert len(titles) >= 5, f"{notebook}: no '## ' sections found"
    deck = _plain((REPO / "slides" / "slides.md").read_text(encoding="utf-8"))
    unnumbered = {title: re.sub(r"^\d+\.\s+", "", title) for title in titles}  # "5. Train" -> "Train"
    unnamed = [title for title, plain in unnumbered.items() if _find_in_order([plain], deck)]
    assert not unnamed, (f"slides/slides.md does not name these sections of {notebook}: {unnamed}; "
                         "add them to its outline slide and to the slides that teach them")


@pytest.mark.parametrize("slide_id", sorted(OUTLINES))
def test_outline_slide_lists_the_sections_in_order(slide_id):
    slide = _slides_by_id()[slide_id]
    titles = notebook_sections(OUTLINES[slide_id])
    missing_body = _find_in_order(titles, _plain(slide["body"]))
    assert not missing_body, f"outline slide {slide_id} lacks, or lists out of order, {missing_body}"
    missing_notes = _find_in_order(titles, _plain(slide["notes"]))
    assert not missing_notes, f"the speaker notes of {slide_id} lack, or name out of order, {missing_notes}"


def test_outline_links_open_the_slides_they_name():
    slides = _slides_by_id()
    links = re.findall(r"\[([^\]]+)\]\(#/([\w-]+)\)", (REPO / "slides" / "slides.md").read_text(encoding="utf-8"))
    assert len(links) >= 20
    for text, target in links:
        assert target in slides, f"link [{text}] goes to #/{target}, but no slide has that id"
        title = re.search(r"^## (.+)$", slides[target]["body"], re.M).group(1)
        assert text == title, f"link [{text}] opens the slide titled {title!r}"


# --------------------------------------------------------------------------- offline build


class _Assets(HTMLParser):
    """Collects script src, stylesheet href and img src, and section ids."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.section_ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "img") and attributes.get("src"):
            self.assets.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.assets.append(attributes["href"])
        if tag == "section" and attributes.get("id"):
            self.section_ids.append(attributes["id"])


@pytest.fixture
def no_network(monkeypatch):
    """Make any attempt to open a network connection fail loudly."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_deck_builds_offline_with_local_assets_only(tmp_path, isbi_dir, no_network, monkeypatch):
    tarball = build.cache_dir() / f"reveal.js-{build.REVEAL_VERSION}.tgz"
    if not tarball.is_file():
        pytest.skip(f"reveal.js was never fetched on this machine ({tarball} missing); "
                    "run `python slides/build.py --fetch-only` (make slides does) once with network")
    monkeypatch.setattr(build.shutil, "which", lambda name: None)  # npm must not be needed

    index = build.build_deck(tmp_path / "deck", offline=True, data=isbi_dir, dpi=40)

    text = index.read_text(encoding="utf-8")
    assert "<title>U-Net image segmentation workshop</title>" in text
    assert "<h1>U-Net image segmentation workshop</h1>" in text
    parser = _Assets()
    parser.feed(text)
    assert {"title", "max-pooling", "transposed-convolution", "notebook-1", "notebook-2"} <= set(parser.section_ids)
    maxpool_slide = re.search(r'<section id="max-pooling">(.*?)</section>', text, re.S).group(1)
    assert "[[10, 14], [2, -3]]" in maxpool_slide and "figures/maxpool.png" in maxpool_slide
    assert "{{" not in text  # every computed value was filled in

    assert parser.assets, "no assets found: the page would not load reveal.js"
    for asset in parser.assets:
        assert not re.match(r"^(https?:)?//", asset), f"remote asset {asset}: the deck must work offline"
        assert (index.parent / asset).is_file(), f"{asset} is referenced but was not written"
    figures = [a for a in parser.assets if a.startswith("figures/")]
    assert len(figures) >= 10
    assert "reveal/dist/reveal.js" in parser.assets


def test_offline_build_without_cache_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("UNET_SLIDES_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="--fetch-only"):
        build.reveal_tarball(offline=True)
