"""The 3D accuracy benchmark: metrics against hand-computed values, and a tiny end-to-end run."""

import json

import pytest
import torch
from conftest import make_tiny_liftedgan

from liftedgan_hf.data.synthetic_faces import write_dataset
from liftedgan_hf.evaluate import (
    HeldOutSet,
    angle_error,
    baselines,
    depth_error,
    evaluate,
    invert_images,
    main,
    same_teacher,
)


def test_metrics():
    assert angle_error(torch.tensor([15.0, 25.0, 35.0]), torch.tensor([10.0, 20.0, 30.0])) == pytest.approx(0.0)
    assert angle_error(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 0.0])) == pytest.approx(1.0)
    torch.manual_seed(0)
    truth = 1 + 0.05 * torch.rand(2, 8, 8)
    mask = torch.ones(2, 8, 8, dtype=torch.bool)
    assert torch.allclose(depth_error(3 * truth + 1, truth, mask, mask), torch.zeros(2), atol=1e-4)  # scale-free
    assert torch.allclose(depth_error(torch.ones_like(truth), truth, mask, mask), torch.ones(2), atol=1e-5)
    assert torch.allclose(depth_error(2 - truth, truth, mask, mask), torch.full((2,), 2.0), atol=1e-4)  # inverted


def test_end_to_end_on_tiny_model(tiny_liftedgan, tmp_path):
    write_dataset(tmp_path / "held_out", 4, 32, first_seed=1000)
    held_out = HeldOutSet.load(tmp_path / "held_out")
    assert held_out.images.shape == (4, 3, 32, 32)
    metrics = evaluate(tiny_liftedgan, held_out, inversion_steps=3, batch_size=2)
    assert set(metrics) == {"yaw_error", "pitch_error", "depth_error", "psnr"}
    assert all(torch.isfinite(torch.tensor(value)) for value in metrics.values())
    reference = baselines(held_out)
    assert reference["flat_depth_error"] == pytest.approx(1.0, abs=1e-4)
    assert 0 < reference["mean_face_depth_error"] < 1
    tiny_liftedgan.save_pretrained(tmp_path / "model")
    main(["--model", str(tmp_path / "model"), "--data", str(tmp_path / "held_out"), "--inversion-steps", "2",
          "--json", str(tmp_path / "metrics.json")])  # fmt: skip
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert set(rows) == {"LiftedGAN", "flat depth", "mean true face depth"}
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "model"), "--data", str(tmp_path / "missing")])


def test_models_with_one_teacher_share_the_inversion(tiny_liftedgan, tmp_path):
    write_dataset(tmp_path / "held_out", 3, 32, first_seed=2000)
    held_out = HeldOutSet.load(tmp_path / "held_out")
    other_lifting = make_tiny_liftedgan(seed=1)
    assert not same_teacher(tiny_liftedgan, other_lifting)
    other_lifting.generator.load_state_dict(tiny_liftedgan.generator.state_dict())
    other_lifting.w_mean.copy_(tiny_liftedgan.w_mean)
    assert same_teacher(tiny_liftedgan, other_lifting)
    torch.manual_seed(0)
    codes = invert_images(tiny_liftedgan, held_out.images, steps=3, batch_size=2)
    assert codes.shape == (3, tiny_liftedgan.style_dim)
    assert evaluate(tiny_liftedgan, held_out, inversion_steps=3, batch_size=2) == evaluate(
        tiny_liftedgan, held_out, batch_size=2, w=codes
    )
