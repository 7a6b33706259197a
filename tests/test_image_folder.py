"""The teacher's image-folder dataset: formats, sizes, bad files, empty folders."""

import warnings

import numpy as np
import pytest
from PIL import Image

from liftedgan_hf.data import ImageFolderDataset


def test_reads_any_image_folder(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.fromarray(np.full((30, 50, 3), 255, np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((40, 20, 3), np.uint8)).save(tmp_path / "a" / "tall.jpg")
    Image.fromarray(np.full((16, 16), 128, np.uint8), "L").save(tmp_path / "a" / "grey.webp")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :10, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a" / "b" / "alpha.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = ImageFolderDataset(tmp_path, 8)
    assert len(caught) == 1
    assert "broken.png" in str(caught[0].message) and "notes.txt" in str(caught[0].message)
    assert len(dataset) == 4
    images = {path.name: dataset[i] for i, path in enumerate(dataset.paths)}
    for image in images.values():
        assert image.shape == (3, 8, 8) and image.min() >= -1 and image.max() <= 1
    assert images["wide.png"].eq(1).all() and images["tall.jpg"].eq(-1).all()
    grey = images["grey.webp"]
    assert np.allclose(grey[0], grey[1], atol=0.02) and np.allclose(grey[1], grey[2], atol=0.02)
    alpha = images["alpha.png"]
    assert alpha[:, :, 0].allclose(alpha.new_tensor([1.0, -1.0, -1.0])[:, None], atol=0.05)  # red
    assert alpha[:, :, -1].allclose(alpha.new_ones(3, 8), atol=0.05)  # transparent -> white


def test_refuses_empty_or_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        ImageFolderDataset(tmp_path / "missing", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no readable images"):
        ImageFolderDataset(tmp_path / "empty", 8)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.jpg").write_bytes(b"nope")
    with pytest.warns(UserWarning, match="x.jpg"), pytest.raises(ValueError, match="no readable images"):
        ImageFolderDataset(tmp_path / "junk", 8)
