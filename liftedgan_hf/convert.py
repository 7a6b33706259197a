"""Convert the official LiftedGAN release into a ``LiftedGAN.from_pretrained`` folder.

    python -m liftedgan_hf.convert --liftedgan checkpoint_030.pth \\
        --stylegan2 stylegan2-ffhq-cropped-300000.pt [--face-embedding lresnet_casia.pth.tar] --output DIR

Only tensors are read (``torch.load(weights_only=True)``): nothing in the files is executed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .checkpoints import CheckpointError, load_torch_checkpoint, state_dict_problems
from .models.face_embedding import load_face_embedding
from .models.stylegan2 import StyleGAN2Generator
from .pipeline import OFFICIAL_NETWORK_NAMES, LiftedGAN

FACE_EMBEDDING_FILE = "face_embedding.safetensors"


def load_lifting_state_dicts(model: LiftedGAN, checkpoint: Mapping[str, object], source: str) -> None:
    """Load the official ``netSD``, ``netSC``, ``netD`` and ``netT`` state dicts into ``model``.

    Extra entries of the official file (``optimizer``, ``global_step``, ``epoch``) are ignored.
    Raises :class:`CheckpointError` naming every missing, unexpected or mis-shaped key.
    """
    problems = []
    for official_name, name in OFFICIAL_NETWORK_NAMES.items():
        if official_name not in checkpoint:
            problems.append(f"missing network {official_name!r}")
            continue
        state_dict = checkpoint[official_name]
        if not isinstance(state_dict, Mapping):
            problems.append(f"{official_name!r} is a {type(state_dict).__name__}, not a state dict")
            continue
        problems += state_dict_problems(getattr(model, name).state_dict(), state_dict, prefix=f"{official_name}.")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(sorted(problems)))
    for official_name, name in OFFICIAL_NETWORK_NAMES.items():
        getattr(model, name).load_state_dict(checkpoint[official_name], strict=True)


def convert_official(
    liftedgan_path: str | os.PathLike,
    stylegan2_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    face_embedding_path: str | os.PathLike | None = None,
    latent_samples: int = 50_000,
    seed: int = 0,
) -> LiftedGAN:
    """Build a :class:`LiftedGAN` from the official files and save it to ``output_dir``.

    The latent statistics (mean and standard deviation of w over ``latent_samples`` mapped codes, the
    official ``w_mu``) are computed once here and stored with the weights. The folder is written to a
    temporary place first, so a failed conversion leaves nothing behind.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"output folder {output_dir} exists and is not empty")
    generator = StyleGAN2Generator.from_rosinality(stylegan2_path, w_avg_samples=latent_samples)
    checkpoint = load_torch_checkpoint(liftedgan_path)
    model = LiftedGAN(generator_config=dict(generator.config))
    model.generator.load_state_dict(generator.state_dict())
    load_lifting_state_dicts(model, checkpoint, str(liftedgan_path))
    model.compute_latent_statistics(latent_samples, seed=seed)
    model.eval()
    face_embedding = load_face_embedding(face_embedding_path) if face_embedding_path else None

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}-"))
    try:
        model.save_pretrained(
            staging,
            model_card={
                "title": "LiftedGAN (official FFHQ 256 release, converted)",
                "description": (
                    "Converted from the official LiftedGAN release (seasonSH/LiftedGAN, MIT licence) "
                    f"with `python -m liftedgan_hf.convert`: lifting networks from `{Path(liftedgan_path).name}`, "
                    f"teacher from `{Path(stylegan2_path).name}`."
                ),
                "training_data": "FFHQ (Flickr-Faces-HQ), 256x256 crops, through the StyleGAN2 teacher.",
                "training_procedure": "See the paper and the official configuration `config/ffhq_256.py`.",
                "metrics": (
                    "Reported in the paper (FFHQ 256): FID 29.81 (teacher 12.72); against pseudo ground "
                    "truth: depth error 0.435, yaw 1.86, pitch 4.77, roll 1.07 degrees."
                ),
            },
        )
        if face_embedding is not None:
            from safetensors.torch import save_file

            save_file(face_embedding.state_dict(), str(staging / FACE_EMBEDDING_FILE))
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m liftedgan_hf.convert", description="Convert the official LiftedGAN release."
    )
    parser.add_argument("--liftedgan", required=True, help="official checkpoint_XXX.pth")
    parser.add_argument("--stylegan2", required=True, help="official stylegan2-ffhq-cropped-300000.pt")
    parser.add_argument("--face-embedding", default=None, help="optional official lresnet_casia.pth.tar")
    parser.add_argument("--output", required=True, help="folder to write (must not exist or be empty)")
    parser.add_argument("--latent-samples", type=int, default=50_000, help="samples for the w statistics")
    parser.add_argument("--seed", type=int, default=0, help="seed of the w statistics")
    args = parser.parse_args(argv)
    try:
        convert_official(
            args.liftedgan, args.stylegan2, args.output, args.face_embedding, args.latent_samples, args.seed
        )
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
