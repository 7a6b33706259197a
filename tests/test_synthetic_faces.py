"""Synthetic faces: symmetry, determinism, ground truth that re-renders the image, value ranges."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from liftedgan_hf.data.synthetic_faces import (
    BORDER_DEPTH,
    canonical_face,
    main,
    render_face,
    synthesize,
)


def test_faces_are_left_right_symmetric():
    for seed in (0, 7, 123):
        depth, albedo, mask = canonical_face(seed, 64)
        assert torch.allclose(depth, depth.flip(-1), atol=1e-6)  # up to float rounding in the blur
        assert torch.equal(albedo, albedo.flip(-1))
        assert torch.equal(mask, mask.flip(-1))


def test_deterministic_by_seed_and_varied_across_seeds():
    first, again, other = synthesize(5, 32), synthesize(5, 32), synthesize(6, 32)
    for field in ("image", "albedo", "canonical_depth", "rendered_depth", "rotation", "light"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    assert not torch.equal(first.canonical_depth, other.canonical_depth)
    assert not torch.equal(first.albedo, other.albedo)


def test_value_ranges():
    for seed in range(20):
        face = synthesize(seed, 32)
        assert face.canonical_depth.min() >= 0.9 and face.canonical_depth.max() <= BORDER_DEPTH
        assert (face.canonical_depth[:, :2] == BORDER_DEPTH).all()
        assert face.canonical_depth[face.mask].mean() < BORDER_DEPTH - 0.02  # the face stands out
        assert face.albedo.min() >= -1 and face.albedo.max() <= 1
        assert face.image.min() >= -1 and face.image.max() <= 1
        assert abs(face.rotation[0]) <= 15 and abs(face.rotation[1]) <= 40 and face.rotation[2] == 0
        assert 0.3 <= face.light[0] <= 0.7 and 0.3 <= face.light[1] <= 0.8 and face.light[2:].abs().max() <= 0.7
    # neighbouring pixels inside the face differ little: no cliffs
    face = synthesize(3, 64)
    inner = face.mask.clone()
    for shift in (-2, -1, 1, 2):
        inner &= face.mask.roll(shift, 0) & face.mask.roll(shift, 1)
    steps = (face.canonical_depth[1:, :] - face.canonical_depth[:-1, :]).abs()[inner[1:, :]]
    assert steps.max() < 0.01


def test_command_line_writes_images_and_ground_truth_that_re_renders(tmp_path):
    main(["--num", "4", "--resolution", "32", "--out", str(tmp_path / "faces"), "--first-seed", "10"])
    images = sorted((tmp_path / "faces" / "images").iterdir())
    assert [path.name for path in images] == [f"{seed:08d}.png" for seed in range(10, 14)]
    truth = load_file(str(tmp_path / "faces" / "ground_truth.safetensors"))
    assert truth["canonical_depth"].shape == (4, 32, 32) and truth["albedo"].shape == (4, 3, 32, 32)
    assert truth["seed"].tolist() == [10, 11, 12, 13]
    for index, path in enumerate(images):
        depth = truth["canonical_depth"][index].float()
        albedo = truth["albedo"][index].float() / 127.5 - 1
        mask = depth < BORDER_DEPTH - 1e-3
        image, _ = render_face(depth, albedo, mask, truth["rotation"][index], truth["light"][index])
        saved = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
        assert (image - saved).abs().mean() < 0.02  # fp16 depth and 8-bit images
    with pytest.raises(SystemExit):
        main(["--num", "0", "--out", str(tmp_path / "none")])
