"""The command line of ``train_accelerate.py``: the ``stylegan2`` and ``lift`` stages with Accelerate.

    accelerate launch train_accelerate.py stylegan2 --train_data_dir DIR --output_dir OUT ...
    accelerate launch train_accelerate.py lift --teacher PATH_OR_REPO --output_dir OUT ...

Randomness is drawn per step from generators seeded by (seed, step, process), so a run resumed from
a checkpoint repeats the uninterrupted run exactly; processes average their gradients every step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from PIL import Image
from tqdm.auto import tqdm

from .. import export
from ..cpu_memory import keep_freed_memory_in_heap
from ..models.stylegan2 import LIFTEDGAN_SLIM_CHANNELS, StyleGAN2Discriminator, StyleGAN2Generator, channel_list
from .checkpointing import load_checkpoint, resolve_resume_path, save_checkpoint
from .lift import LiftingConfig, LiftingTrainer, NonFiniteLossError, make_optimizer
from .stylegan2 import StyleGAN2Config, StyleGAN2Trainer, make_optimizers

# Named model presets: the teacher's size and the lifting networks' sizes.
MODEL_PRESETS = {
    "tiny": {
        "generator": {"resolution": 32, "style_dim": 32, "n_mlp": 2, "channels": [64, 64, 32, 16]},
        "lifting": {
            "style_decompose": {"hidden": 64},
            "style_compose": {"hidden": 64},
            "depth_net": {"code_dim": 64, "base_channels": 8},
            "trans_net": {"code_dim": 8, "base_channels": 8},
        },
    },
    "demo": {
        "generator": {"resolution": 64, "style_dim": 256, "n_mlp": 4, "channels": [128, 128, 128, 64, 32]},
        "lifting": {
            "style_decompose": {"hidden": 256},
            "style_compose": {"hidden": 256},
            "depth_net": {"code_dim": 256, "base_channels": 16},
            "trans_net": {"code_dim": 16, "base_channels": 16},
        },
    },
    "official-256": {
        "generator": {
            "resolution": 256,
            "style_dim": 512,
            "n_mlp": 8,
            "channels": channel_list(LIFTEDGAN_SLIM_CHANNELS, 256),
        },
        "lifting": {},
    },
}


def load_model_config(name_or_path: str) -> dict:
    """A preset name or a JSON file with "generator" and "lifting" entries."""
    if name_or_path in MODEL_PRESETS:
        return MODEL_PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"--model_config must be one of {sorted(MODEL_PRESETS)} or a JSON file, got {name_or_path!r}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(config, dict) or "generator" not in config:
        raise ValueError(f"{path}: expected a JSON object with a 'generator' entry (and optionally 'lifting')")
    return {"generator": config["generator"], "lifting": config.get("lifting", {})}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a StyleGAN2 teacher or lift one into a LiftedGAN.")
    stages = parser.add_subparsers(dest="stage", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--output_dir", required=True)
    shared.add_argument("--model_config", default="tiny", help=f"{', '.join(MODEL_PRESETS)} or a JSON file")
    shared.add_argument("--resolution", type=int, default=None, help="override the preset's resolution")
    shared.add_argument("--train_batch_size", type=int, default=8, help="per process")
    shared.add_argument("--max_train_steps", type=int, default=1000)
    shared.add_argument("--learning_rate", type=float, default=None)
    shared.add_argument("--gradient_accumulation_steps", type=int, default=1)
    shared.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no")
    shared.add_argument("--checkpointing_steps", type=int, default=500)
    shared.add_argument("--checkpoints_total_limit", type=int, default=None)
    shared.add_argument("--resume_from_checkpoint", default=None, help="a checkpoint folder or 'latest'")
    shared.add_argument("--validation_steps", type=int, default=500)
    shared.add_argument("--report_to", choices=["tensorboard", "none"], default="none")
    shared.add_argument("--seed", type=int, default=0)
    shared.add_argument("--dataloader_num_workers", type=int, default=0)
    shared.add_argument("--push_to_hub", action="store_true")
    shared.add_argument("--hub_model_id", default=None)

    teacher = stages.add_parser("stylegan2", parents=[shared], help="train a StyleGAN2 teacher on an image folder")
    teacher.add_argument("--train_data_dir", required=True)
    teacher.add_argument("--r1", type=float, default=StyleGAN2Config.r1)
    teacher.add_argument("--r1_interval", type=int, default=StyleGAN2Config.r1_interval)
    teacher.add_argument("--path_length", type=float, default=StyleGAN2Config.path_length)
    teacher.add_argument("--mixing_probability", type=float, default=StyleGAN2Config.mixing_probability)
    teacher.add_argument("--ema_half_life_images", type=float, default=StyleGAN2Config.ema_half_life_images)
    teacher.add_argument(
        "--ema_rampup", type=float, default=StyleGAN2Config.ema_rampup, help="EMA half-life <= this x images seen"
    )
    teacher.add_argument("--horizontal_flip", action="store_true", help="mirror real images at random")

    lift = stages.add_parser("lift", parents=[shared], help="distil a teacher into a LiftedGAN")
    lift.add_argument("--teacher", required=True, help="a StyleGAN2Generator folder or hub id, or a rosinality .pt")
    defaults = LiftingConfig()
    for name in ("reconstruction", "perceptual", "flip", "perturb_image", "light_view_cycle", "identity"):
        lift.add_argument(f"--lambda_{name}", type=float, default=getattr(defaults, name))
    lift.add_argument("--lambda_latent_prior", type=float, default=defaults.latent_prior)
    lift.add_argument("--lambda_albedo_rank", type=float, default=defaults.albedo_rank)
    lift.add_argument(
        "--albedo_rank_depth_blur",
        type=float,
        default=defaults.albedo_rank_depth_blur,
        help="sigma (pixels) of the depth blur before de-lighting the rank loss's albedo; 0 is official",
    )
    lift.add_argument("--pitch_range", type=float, default=defaults.pitch_range, help="perturbation, degrees")
    lift.add_argument("--yaw_range", type=float, default=defaults.yaw_range, help="perturbation, degrees")
    lift.add_argument(
        "--perturb_translation",
        type=float,
        default=defaults.perturb_translation,
        help="x-translation code of perturbed views per sin(yaw); official 0.2 (FFHQ crops)",
    )
    lift.add_argument("--truncation", type=float, default=defaults.truncation_psi)
    lift.add_argument("--perceptual", choices=["vgg16", "none"], default="none")
    lift.add_argument("--vgg16_weights", default=None, help="torchvision VGG-16 state dict (local file)")
    lift.add_argument(
        "--face_embedding", default=None, help="official lresnet_casia.pth.tar; identity loss off without"
    )
    lift.add_argument("--latent_samples", type=int, default=50_000, help="samples for the w statistics")
    return parser


def step_seed(seed: int, step: int, process: int) -> int:
    """A seed for one step of one process, the same in resumed and uninterrupted runs."""
    return (seed * 1_000_003 + step * 9_176 + process * 7_919_063) % (2**63 - 1)


def initial_weights_seed(seed: int) -> int:
    """Seed of the initial weights, apart from ``seed``'s own random stream. Latents are drawn from
    that stream (``seeds_to_z``, validation samples, the mean w), and the mapping network's first
    weight matrix, drawn first and trained at 1/100 of the learning rate, would otherwise stay those
    very latents (scaled): a code equal to a row of it maps twice as far from the mean w as others."""
    return step_seed(seed, step=-1, process=0)


def average_gradients(accelerator: Accelerator, parameters) -> None:
    """Mean of the gradients over processes (one all-reduce of a flat buffer)."""
    if accelerator.num_processes == 1:
        return
    with_gradient = [parameter for parameter in parameters if parameter.grad is not None]
    if not with_gradient:
        return
    flat = torch.cat([parameter.grad.flatten() for parameter in with_gradient])
    flat = accelerator.reduce(flat, reduction="mean")
    offset = 0
    for parameter in with_gradient:
        count = parameter.grad.numel()
        parameter.grad.copy_(flat[offset : offset + count].view_as(parameter.grad))
        offset += count


def check_synchronised(accelerator: Accelerator, module: torch.nn.Module) -> None:
    """Raise if the processes ended with different weights (they average gradients every step)."""
    if accelerator.num_processes == 1:
        return
    checksum = torch.stack([parameter.detach().double().sum() for parameter in module.parameters()]).sum()
    gathered = accelerator.gather(checksum.to(accelerator.device)[None])
    if not torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=1e-9, atol=0):
        raise RuntimeError(f"weights differ between processes: checksums {gathered.tolist()}")
    accelerator.print(f"weights synchronised across {accelerator.num_processes} processes")


def _grid(rows: list[torch.Tensor]) -> Image.Image:
    """Rows of images (N, C, H, W) in [-1, 1] (C = 1 or 3) as one picture."""
    rows = [row.expand(-1, 3, -1, -1) if row.shape[1] == 1 else row for row in rows]
    grid = torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)
    return export.tensor_to_pil(grid[None])[0]


def _write_validation(accelerator: Accelerator, output_dir: Path, name: str, picture: Image.Image, step: int) -> None:
    folder = output_dir / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    picture.save(folder / f"{name}-{step:07d}.png")
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            import numpy as np

            tracker.writer.add_image(name, np.asarray(picture), step, dataformats="HWC")


class _Checkpointable:
    """Gives a plain value (a running mean) the ``state_dict``/``load_state_dict`` of a checkpointed module."""

    def __init__(self, get, put):
        self.get, self.put = get, put

    def state_dict(self):
        return self.get()

    def load_state_dict(self, state):
        self.put(state)


def _accelerator(args) -> Accelerator:
    project = ProjectConfiguration(project_dir=args.output_dir, logging_dir=str(Path(args.output_dir) / "logs"))
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=project,
    )
    if args.report_to != "none":
        accelerator.init_trackers(
            f"liftedgan-{args.stage}",
            config={k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))},
        )
    return accelerator


def _validate_common(args, parser) -> None:
    for name in (
        "train_batch_size",
        "max_train_steps",
        "gradient_accumulation_steps",
        "checkpointing_steps",
        "validation_steps",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id")


def _resume(accelerator: Accelerator, args, modules) -> int:
    path = resolve_resume_path(args.output_dir, args.resume_from_checkpoint)
    if path is None:
        if args.resume_from_checkpoint == "latest":
            accelerator.print("no checkpoint to resume from: starting from scratch")
        return 0
    step = load_checkpoint(accelerator, path, modules)["step"]
    accelerator.print(f"resumed from {path} at step {step}")
    return step


def _train_loop(accelerator, args, first_step, run_step, validate, checkpoint_state, modules) -> float:
    """Steps ``first_step + 1 .. max_train_steps`` with progress bar, checkpoints and validation."""
    started = time.time()
    progress = tqdm(
        range(first_step, args.max_train_steps),
        initial=first_step,
        total=args.max_train_steps,
        disable=not accelerator.is_main_process,
        desc=args.stage,
    )
    for step in progress:
        seed = step_seed(args.seed, step, accelerator.process_index)
        torch.manual_seed(seed)
        logs = run_step(step, torch.Generator().manual_seed(seed))
        progress.set_postfix({name: f"{value:.3f}" for name, value in logs.items()})
        accelerator.log(logs, step=step + 1)
        done = step + 1
        if accelerator.is_main_process and (done % args.validation_steps == 0 or done == args.max_train_steps):
            validate(done)
        if done % args.checkpointing_steps == 0 or done == args.max_train_steps:
            save_checkpoint(
                accelerator, args.output_dir, done, checkpoint_state(), args.checkpoints_total_limit, modules
            )
    return time.time() - started


def _procedure(args, wall_seconds: float) -> str:
    command = "accelerate launch train_accelerate.py " + " ".join(sys.argv[1:])
    return (
        f"Trained with `{command}` ({args.max_train_steps} steps, batch {args.train_batch_size} per process; "
        f"the last run took {wall_seconds / 60:.1f} minutes)."
    )


# ---------------------------------------------------------------------------------------- stage stylegan2


class StepBatches(torch.utils.data.Sampler):
    """Dataset indices of this process for steps ``first_step .. last_step - 1``.

    Epochs are permutations seeded by (seed, epoch) and each global batch is split between the
    processes, so a resumed run reads exactly the batches of the uninterrupted one.
    """

    def __init__(
        self, size: int, batch_size: int, accelerator: Accelerator, seed: int, first_step: int, last_step: int
    ):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.process, self.processes = accelerator.process_index, accelerator.num_processes
        self.first_step, self.last_step = first_step, last_step

    def __len__(self) -> int:
        return self.last_step - self.first_step

    def __iter__(self):
        global_batch = self.batch_size * self.processes
        per_epoch = max(1, self.size // global_batch)
        for step in range(self.first_step, self.last_step):
            epoch, position = divmod(step, per_epoch)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 7_919 + epoch))
            start = position * global_batch + self.process * self.batch_size
            yield order[torch.arange(start, start + self.batch_size) % self.size].tolist()


def train_stylegan2(args, parser) -> None:
    from ..data import ImageFolderDataset

    config = load_model_config(args.model_config)["generator"].copy()
    if args.resolution:
        config["resolution"] = args.resolution
    try:
        dataset = ImageFolderDataset(args.train_data_dir, config["resolution"])
    except ValueError as error:
        parser.error(str(error))
    accelerator = _accelerator(args)
    torch.manual_seed(initial_weights_seed(args.seed))  # identical initial weights on every process
    generator = StyleGAN2Generator(**config).to(accelerator.device)
    discriminator = StyleGAN2Discriminator(resolution=config["resolution"], channels=generator.channels).to(
        accelerator.device
    )
    train_config = StyleGAN2Config(
        r1=args.r1,
        r1_interval=args.r1_interval,
        path_length=args.path_length,
        mixing_probability=args.mixing_probability,
        ema_half_life_images=args.ema_half_life_images,
        ema_rampup=args.ema_rampup,
    )
    trainer = StyleGAN2Trainer(generator, discriminator, train_config)
    optimizers = make_optimizers(generator, discriminator, args.learning_rate or 2e-3, train_config)
    optimizers = tuple(accelerator.prepare(*optimizers))
    modules = {
        "generator": generator,
        "discriminator": discriminator,
        "generator_ema": trainer.ema,
        "statistics": _Checkpointable(
            lambda: {"path_length_mean": trainer.path_length_mean},
            lambda state: setattr(trainer, "path_length_mean", state["path_length_mean"]),
        ),
    }
    try:
        first_step = _resume(accelerator, args, modules)
    except OSError as error:  # a missing or foreign checkpoint folder
        parser.error(str(error))
    batches = iter(
        torch.utils.data.DataLoader(
            dataset,
            batch_sampler=StepBatches(
                len(dataset),
                args.train_batch_size,
                accelerator,
                args.seed,
                first_step * args.gradient_accumulation_steps,
                args.max_train_steps * args.gradient_accumulation_steps,
            ),
            num_workers=args.dataloader_num_workers,
        )
    )

    def batches_for(rng: torch.Generator) -> list[torch.Tensor]:
        """The real images of one step: one batch per gradient-accumulation step."""
        parts = []
        for _ in range(args.gradient_accumulation_steps):
            images = next(batches)
            if args.horizontal_flip:
                flip = torch.rand(len(images), generator=rng) < 0.5
                images[flip] = images[flip].flip(-1)
            parts.append(images.to(accelerator.device))
        return parts

    def run_step(step, rng):
        with accelerator.autocast():
            return trainer.step(
                batches_for(rng),
                rng,
                optimizers,
                step,
                backward=accelerator.backward,
                reduce_gradients=lambda parameters: average_gradients(accelerator, parameters),
            )

    fixed_z = torch.randn(8, generator.config.style_dim, generator=torch.Generator().manual_seed(args.seed))

    def validate(step):
        with torch.no_grad():
            trainer.ema.w_avg.copy_(trainer.ema.mean_w(2000, seed=args.seed))
            samples = trainer.ema(fixed_z.to(accelerator.device), noise_mode="const").float()
            truncated = trainer.ema(fixed_z.to(accelerator.device), truncation_psi=0.7, noise_mode="const").float()
        _write_validation(accelerator, Path(args.output_dir), "samples", _grid([samples, truncated]), step)

    try:
        seconds = _train_loop(
            accelerator, args, first_step, run_step, validate, lambda: {"stage": "stylegan2"}, modules
        )
    except NonFiniteLossError as error:
        accelerator.print(f"stopping: {error}; the last good checkpoint is kept")
        raise SystemExit(3) from error
    check_synchronised(accelerator, generator)
    if accelerator.is_main_process:
        ema = trainer.ema
        ema.w_avg.copy_(ema.mean_w(10_000, seed=args.seed))
        card = {
            "training_data": f"Images of `{args.train_data_dir}` ({len(dataset)} files).",
            "training_procedure": _procedure(args, seconds),
        }
        ema.save_pretrained(args.output_dir, model_card=card)
        if args.push_to_hub:
            ema.push_to_hub(args.hub_model_id, model_card=card)
    accelerator.end_training()


# ---------------------------------------------------------------------------------------- stage lift


def load_teacher(path_or_repo: str) -> StyleGAN2Generator:
    """A teacher in hub format (folder or hub id) or a rosinality checkpoint file (.pt/.pth)."""
    if Path(path_or_repo).suffix in (".pt", ".pth"):
        return StyleGAN2Generator.from_rosinality(path_or_repo)
    return StyleGAN2Generator.from_pretrained(path_or_repo)


def lifting_config(args: argparse.Namespace) -> LiftingConfig:
    """The loss weights and perturbation ranges of the ``lift`` command line."""
    return LiftingConfig(
        reconstruction=args.lambda_reconstruction,
        perceptual=args.lambda_perceptual,
        flip=args.lambda_flip,
        perturb_image=args.lambda_perturb_image,
        light_view_cycle=args.lambda_light_view_cycle,
        identity=args.lambda_identity,
        latent_prior=args.lambda_latent_prior,
        albedo_rank=args.lambda_albedo_rank,
        albedo_rank_depth_blur=args.albedo_rank_depth_blur,
        pitch_range=args.pitch_range,
        yaw_range=args.yaw_range,
        perturb_translation=args.perturb_translation,
        truncation_psi=args.truncation,
    )


def train_lift(args, parser) -> None:
    from .. import losses
    from ..models.face_embedding import load_face_embedding
    from ..models.vgg import load_vgg16
    from ..pipeline import LiftedGAN

    if args.perceptual == "vgg16" and not args.vgg16_weights:
        parser.error(
            "--perceptual vgg16 needs --vgg16_weights PATH (torchvision's vgg16-397923af.pth); nothing is downloaded"
        )
    try:
        config = lifting_config(args)
        teacher = load_teacher(args.teacher)
        if math.ceil(2 * config.albedo_rank_depth_blur) >= teacher.config.resolution:
            raise ValueError(
                f"--albedo_rank_depth_blur {config.albedo_rank_depth_blur} is too wide for "
                f"{teacher.config.resolution}-pixel images"
            )
        perceptual = losses.PerceptualLoss(load_vgg16(args.vgg16_weights)) if args.perceptual == "vgg16" else None
        embedding = load_face_embedding(args.face_embedding) if args.face_embedding else None
    except (OSError, ValueError) as error:
        parser.error(str(error))
    accelerator = _accelerator(args)
    lifting = load_model_config(args.model_config)["lifting"]
    torch.manual_seed(initial_weights_seed(args.seed))  # identical initial weights on every process
    model = LiftedGAN(generator_config=dict(teacher.config), lifting_config=lifting)
    model.generator.load_state_dict(teacher.state_dict())
    model.to(accelerator.device)
    if perceptual is not None:
        perceptual.to(accelerator.device)
    if embedding is not None:
        embedding.to(accelerator.device)
    # The w statistics are part of the model: computed once, identically on every process.
    model.compute_latent_statistics(args.latent_samples, seed=args.seed)
    trainer = LiftingTrainer(model, config, perceptual, embedding)
    optimizer = accelerator.prepare(make_optimizer(model, args.learning_rate or 1e-4))
    modules = {"model": model}
    try:
        first_step = _resume(accelerator, args, modules)
    except OSError as error:  # a missing or foreign checkpoint folder
        parser.error(str(error))
    model.train()
    model.generator.eval()

    def run_step(step, rng):
        with accelerator.autocast():
            return trainer.step(
                args.train_batch_size,
                rng,
                optimizer,
                step,
                accumulation_steps=args.gradient_accumulation_steps,
                backward=accelerator.backward,
                reduce_gradients=lambda: average_gradients(accelerator, model.parameters()),
            )

    def validate(step):
        model.eval()
        with torch.no_grad():
            output = model.generate(seed=list(range(4)), truncation_psi=args.truncation)
            sweep = [model.render(output, yaw=yaw, pitch=0.0, roll=0.0).image for yaw in (-45, -20, 20, 45)]
            teacher_images = model.generator.synthesis(output.w)
        rows = [
            teacher_images,
            output.image,
            output.canonical_texture,
            output.albedo,
            export.depth_to_image(output.depth),
            export.normal_to_image(output.normal),
            *sweep,
        ]
        _write_validation(accelerator, Path(args.output_dir), "lifting", _grid([row.float() for row in rows]), step)
        model.train()
        model.generator.eval()

    try:
        seconds = _train_loop(accelerator, args, first_step, run_step, validate, lambda: {"stage": "lift"}, modules)
    except NonFiniteLossError as error:
        accelerator.print(f"stopping: {error}; the last good checkpoint is kept")
        raise SystemExit(3) from error
    check_synchronised(accelerator, model)
    if accelerator.is_main_process:
        model.eval()
        card = {
            "training_data": f"Samples of the StyleGAN2 teacher `{args.teacher}` (truncation {args.truncation}).",
            "training_procedure": _procedure(args, seconds),
        }
        model.save_pretrained(args.output_dir, model_card=card)
        if args.push_to_hub:
            model.push_to_hub(args.hub_model_id, model_card=card)
    accelerator.end_training()


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory_in_heap()
    _validate_common(args, parser)
    os.makedirs(args.output_dir, exist_ok=True)
    if not math.isfinite(args.learning_rate or 1.0) or (args.learning_rate is not None and args.learning_rate <= 0):
        parser.error("--learning_rate must be a positive number")
    (train_stylegan2 if args.stage == "stylegan2" else train_lift)(args, parser)
