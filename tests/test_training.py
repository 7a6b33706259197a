"""train_accelerate.py end to end at tiny size: both stages, resume equality, SIGKILL, 2 processes."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from liftedgan_hf import LiftedGAN, StyleGAN2Generator
from liftedgan_hf.training.checkpointing import COMPLETE_MARKER, list_checkpoints
from liftedgan_hf.training.lift import LiftingConfig, LiftingTrainer, NonFiniteLossError, make_optimizer
from liftedgan_hf.training.script import build_parser, lifting_config
from liftedgan_hf.training.stylegan2 import StyleGAN2Config, StyleGAN2Trainer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "train_accelerate.py")
LIFT_FLAGS = ["--train_batch_size", "2", "--latent_samples", "500", "--validation_steps", "100"]


def run(*arguments, check=True, launcher=(sys.executable,), env=None):
    result = subprocess.run(
        [*launcher, SCRIPT, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for index in range(10):
        base = np.zeros((36, 36, 3), np.uint8)
        base[8:28, 10:26] = rng.integers(80, 255, 3)
        Image.fromarray(base).save(folder / f"{index}.png")
    return folder


@pytest.fixture(scope="module")
def teacher(image_folder, tmp_path_factory):
    output = tmp_path_factory.mktemp("teacher")
    run(
        "stylegan2",
        "--train_data_dir",
        image_folder,
        "--output_dir",
        output,
        "--max_train_steps",
        4,
        "--train_batch_size",
        4,
        "--checkpointing_steps",
        2,
        "--validation_steps",
        2,
        "--report_to",
        "tensorboard",
        "--horizontal_flip",
        "--path_length",
        2.0,
    )
    return output


def weights(folder):
    return load_file(str(Path(folder) / "diffusion_pytorch_model.safetensors"))


def assert_same_weights(first, second):
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def lift(teacher, output, steps, *extra, **kwargs):
    """The lift stage for ``steps`` steps, a checkpoint every step unless ``extra`` says otherwise."""
    return run("lift", "--teacher", teacher, "--output_dir", output, "--max_train_steps", steps,
               "--checkpointing_steps", 1, *LIFT_FLAGS, *extra, **kwargs)  # fmt: skip


def test_stylegan2_stage(teacher):
    generator = StyleGAN2Generator.from_pretrained(teacher)
    assert generator.config.resolution == 32
    assert generator(torch.randn(2, generator.config.style_dim)).shape == (2, 3, 32, 32)
    assert [path.name for path in list_checkpoints(teacher)] == ["checkpoint-2", "checkpoint-4"]
    # weights as safetensors; no pickled custom state that accelerate would load with weights_only=False
    checkpoint = list_checkpoints(teacher)[-1]
    names = {path.name for path in checkpoint.iterdir()}
    assert {"generator.safetensors", "discriminator.safetensors", "generator_ema.safetensors"} <= names
    assert not any(name.startswith("custom_checkpoint") for name in names)
    assert (teacher / "validation" / "samples-0000004.png").is_file()
    assert list((teacher / "logs").rglob("events.out.tfevents*"))
    card = (teacher / "README.md").read_text()
    assert "train_accelerate.py stylegan2" in card and "10 files" in card
    # the initial weights come from another random stream than the latents of the same seed
    first_layer = generator.style[1].weight
    latents = torch.randn(*first_layer.shape, generator=torch.Generator().manual_seed(0))
    assert F.cosine_similarity(first_layer, latents, dim=1).abs().mean() < 0.3


def test_lift_stage_and_resume_equality(teacher, tmp_path):
    full, parts = tmp_path / "full", tmp_path / "parts"
    lift(teacher, full, 4)
    model = LiftedGAN.from_pretrained(full)
    assert model.generate(seed=[0, 1], yaw=20.0).image.shape == (2, 3, 32, 32)
    assert (full / "validation" / "lifting-0000004.png").is_file()
    assert "train_accelerate.py lift" in (full / "README.md").read_text()
    assert (list_checkpoints(full)[-1] / "model.safetensors").is_file()
    # a checkpoint of the other stage is refused by name, before any state is touched
    refused = run("lift", "--teacher", teacher, "--output_dir", tmp_path / "wrong", "--max_train_steps", 4,
                  "--resume_from_checkpoint", list_checkpoints(teacher)[-1], *LIFT_FLAGS, check=False)  # fmt: skip
    assert refused.returncode != 0 and "model.safetensors" in refused.stderr
    lift(teacher, parts, 2)
    resumed = lift(teacher, parts, 4, "--resume_from_checkpoint", "latest")
    assert "resumed from" in resumed.stdout + resumed.stderr
    assert_same_weights(full, parts)


def test_stylegan2_resume_equality(image_folder, tmp_path):
    def teacher_run(output, steps, *extra):
        run("stylegan2", "--train_data_dir", image_folder, "--output_dir", output, "--max_train_steps", steps,
            "--train_batch_size", 2, "--checkpointing_steps", 3, "--validation_steps", 100, "--r1_interval", 2,
            *extra)  # fmt: skip

    teacher_run(tmp_path / "full", 6, "--checkpoints_total_limit", 1)
    assert [path.name for path in list_checkpoints(tmp_path / "full")] == ["checkpoint-6"]
    teacher_run(tmp_path / "parts", 3)
    teacher_run(tmp_path / "parts", 6, "--resume_from_checkpoint", "latest")
    assert_same_weights(tmp_path / "full", tmp_path / "parts")


def test_sigkill_then_resume_latest(teacher, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    lift(teacher, reference, 5)
    arguments = [
        "lift",
        "--teacher",
        teacher,
        "--output_dir",
        killed,
        "--max_train_steps",
        5,
        "--checkpointing_steps",
        1,
    ]
    process = subprocess.Popen(
        [sys.executable, SCRIPT, *map(str, arguments), *LIFT_FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (killed / "checkpoint-2").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    for checkpoint in list_checkpoints(killed):
        assert (checkpoint / COMPLETE_MARKER).is_file()
    lift(teacher, killed, 5, "--resume_from_checkpoint", "latest")
    assert_same_weights(reference, killed)


def test_two_processes_keep_weights_synchronised(teacher, tmp_path):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    result = lift(teacher, tmp_path / "ddp", 2, launcher=(torchrun, "--nproc_per_node", "2"),
                  env={"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert "weights synchronised across 2 processes" in result.stdout + result.stderr
    assert LiftedGAN.from_pretrained(tmp_path / "ddp") is not None


def test_bad_arguments_and_data(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("stylegan2", "--train_data_dir", tmp_path / "empty", "--output_dir", tmp_path / "o", check=False)
    assert result.returncode == 2 and "no readable images" in result.stderr
    result = run("lift", "--teacher", tmp_path / "nothing.pt", "--output_dir", tmp_path / "o", check=False)
    assert result.returncode == 2 and "nothing.pt" in result.stderr
    result = run("lift", "--teacher", tmp_path, "--output_dir", tmp_path / "o", "--perceptual", "vgg16", check=False)
    assert result.returncode == 2 and "--vgg16_weights" in result.stderr
    result = run("lift", "--teacher", tmp_path, "--output_dir", tmp_path / "o", "--model_config", "huge", check=False)
    assert result.returncode != 0


def test_lift_rejects_a_depth_blur_wider_than_the_image(teacher, tmp_path):
    result = lift(teacher, tmp_path / "o", 1, "--albedo_rank_depth_blur", 40, check=False)
    assert result.returncode == 2 and "--albedo_rank_depth_blur 40.0 is too wide" in result.stderr
    result = lift(teacher, tmp_path / "o", 1, "--albedo_rank_depth_blur", -1, check=False)
    assert result.returncode == 2 and "sigma >= 0" in result.stderr


def test_ema_rampup_follows_the_generator_early_and_slows_later():
    def ema_gap(rampup, step):
        torch.manual_seed(0)
        generator = StyleGAN2Generator(resolution=8, style_dim=8, n_mlp=1, channels=[8, 8])
        trainer = StyleGAN2Trainer(generator, None, StyleGAN2Config(ema_rampup=rampup))
        with torch.no_grad():
            for parameter in generator.parameters():
                parameter.add_(1.0)
        trainer.update_ema(batch=8, step=step)
        return max((ema - new).abs().max().item() for ema, new in zip(trainer.ema.parameters(), generator.parameters()))

    # half-life 0.05 * 8 images at step 0: the EMA all but copies the generator (0.5 ** 20 of the old weights)
    assert ema_gap(0.05, step=0) < 1e-5
    # without the ramp-up (half-life 10k images) it keeps 0.5 ** (8 / 10000) of the old weights
    assert abs(ema_gap(0.0, step=0) - 0.5 ** (8 / 10_000)) < 1e-5
    # late in training the ramp-up no longer shortens the half-life
    assert abs(ema_gap(0.05, step=100_000) - 0.5 ** (8 / 10_000)) < 1e-5


def test_losses_decrease_when_overfitting_a_fixed_batch(tiny_liftedgan):
    tiny_liftedgan.train()
    trainer = LiftingTrainer(tiny_liftedgan)
    optimizer = make_optimizer(tiny_liftedgan, learning_rate=1e-3)
    history = [trainer.step(4, torch.Generator().manual_seed(0), optimizer, step)["total"] for step in range(25)]
    assert all(np.isfinite(history))
    assert np.mean(history[-5:]) < 0.8 * np.mean(history[:5])


def test_non_finite_loss_stops_with_the_term_and_step(tiny_liftedgan, monkeypatch, teacher, tmp_path):
    from liftedgan_hf import losses

    original = losses.latent_prior_loss
    calls = {"count": 0}

    def poisoned(*args):
        calls["count"] += 1
        value = original(*args)
        return value * float("nan") if calls["count"] >= 3 else value

    monkeypatch.setattr(losses, "latent_prior_loss", poisoned)
    trainer = LiftingTrainer(tiny_liftedgan.train())
    optimizer = make_optimizer(tiny_liftedgan)
    trainer.step(2, torch.Generator().manual_seed(0), optimizer, step=0)
    trainer.step(2, torch.Generator().manual_seed(1), optimizer, step=1)
    before = {k: v.clone() for k, v in tiny_liftedgan.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="'latent_prior' is nan at step 2"):
        trainer.step(2, torch.Generator().manual_seed(2), optimizer, step=2)
    assert all(torch.equal(before[k], v) for k, v in tiny_liftedgan.state_dict().items())  # no update


def test_terms_weighted_zero_are_skipped(tiny_liftedgan, monkeypatch):
    from liftedgan_hf import losses

    def broken(*args):
        raise AssertionError("a loss weighted 0 was computed")

    monkeypatch.setattr(losses, "light_view_cycle_loss", broken)
    monkeypatch.setattr(losses, "albedo_rank_loss", broken)
    synthesis_calls = {"count": 0}
    synthesis = tiny_liftedgan.generator.synthesis

    def counted(*args, **kwargs):
        synthesis_calls["count"] += 1
        return synthesis(*args, **kwargs)

    monkeypatch.setattr(tiny_liftedgan.generator, "synthesis", counted)
    config = LiftingConfig(flip=0.0, perturb_image=0.0, light_view_cycle=0.0, albedo_rank=0.0)
    trainer = LiftingTrainer(tiny_liftedgan.train(), config)
    logged = trainer.step(2, torch.Generator().manual_seed(0), make_optimizer(tiny_liftedgan), step=0)
    assert set(logged) == {"reconstruction", "latent_prior", "total"}
    # the teacher ran twice (samples, canonical texture), not for the perturbed image or part a
    assert synthesis_calls["count"] == 2


def test_rank_loss_albedo_with_a_blurred_depth_ignores_a_fine_zigzag(tiny_liftedgan):
    with torch.no_grad():
        face = tiny_liftedgan.estimate(tiny_liftedgan.w_mean.expand(2, -1) + 0.1 * torch.randn(2, 1))
    assert torch.equal(face.albedo, tiny_liftedgan.delight(face.texture, face.depth, face.light_code)[1])
    columns = torch.arange(face.depth.shape[-1])
    rough_depth = face.depth + 0.005 * (-1.0) ** (columns // 2)  # stripes 4 columns apart, as the rank loss grows
    rough = dataclasses.replace(
        face, depth=rough_depth, albedo=tiny_liftedgan.delight(face.texture, rough_depth, face.light_code)[1]
    )
    official = LiftingTrainer(tiny_liftedgan, LiftingConfig())
    blurred = LiftingTrainer(tiny_liftedgan, LiftingConfig(albedo_rank_depth_blur=1.5))
    assert official.rank_loss_albedo(rough) is rough.albedo
    official_change = (official.rank_loss_albedo(rough) - face.albedo).abs().mean()
    blurred_change = (blurred.rank_loss_albedo(rough) - blurred.rank_loss_albedo(face)).abs().mean()
    assert official_change > 1e-3 and blurred_change < 0.1 * official_change
    # a flat depth stays flat when blurred, so both de-light it the same way
    flat = dataclasses.replace(face, depth=torch.ones_like(face.depth))
    flat.albedo = tiny_liftedgan.delight(face.texture, flat.depth, face.light_code)[1]
    torch.testing.assert_close(blurred.rank_loss_albedo(flat), flat.albedo)
    with pytest.raises(ValueError, match="albedo_rank_depth_blur"):
        LiftingConfig(albedo_rank_depth_blur=-1.0)


def test_lift_command_line_sets_the_perturbation(tiny_liftedgan, monkeypatch):
    from liftedgan_hf import losses

    official = lifting_config(build_parser().parse_args(["lift", "--teacher", "t", "--output_dir", "o"]))
    assert official == LiftingConfig()
    arguments = ["lift", "--teacher", "t", "--output_dir", "o", "--perturb_translation", "0", "--yaw_range", "30"]
    config = lifting_config(build_parser().parse_args(arguments))
    assert config.perturb_translation == 0.0 and config.yaw_range == 30.0
    sampled = []
    sample = losses.sample_perturbation

    def recorded(*args, **kwargs):
        sampled.append(sample(*args, **kwargs))
        return sampled[-1]

    monkeypatch.setattr(losses, "sample_perturbation", recorded)
    trainer = LiftingTrainer(tiny_liftedgan.train(), config)
    trainer.step(3, torch.Generator().manual_seed(0), make_optimizer(tiny_liftedgan), step=0)
    _, view_code, angles = sampled[0]
    assert angles[:, 1].abs().max() <= 30 and angles[:, 1].abs().max() > 0
    assert (view_code[:, 3:] == 0).all()  # no translation with the synthetic faces' setting


def test_model_config_json(teacher, tmp_path):
    config = tmp_path / "config.json"
    lifting = {"depth_net": {"code_dim": 16, "base_channels": 8}, "trans_net": {"code_dim": 4, "base_channels": 8}}
    config.write_text(json.dumps({"generator": {}, "lifting": lifting}))
    lift(teacher, tmp_path / "o", 1, "--model_config", config)
    assert LiftedGAN.from_pretrained(tmp_path / "o").depth_net.mlp[0].out_features == 16


def test_accumulation_and_mixed_precision(teacher, image_folder, tmp_path):
    half = ["--gradient_accumulation_steps", 2, "--mixed_precision", "bf16"]
    lift(teacher, tmp_path / "lift", 1, *half)
    run("stylegan2", "--train_data_dir", image_folder, "--output_dir", tmp_path / "teacher", "--max_train_steps", 1,
        "--checkpointing_steps", 1, "--train_batch_size", 2, *half)  # fmt: skip
    assert LiftedGAN.from_pretrained(tmp_path / "lift") is not None
    assert StyleGAN2Generator.from_pretrained(tmp_path / "teacher") is not None
