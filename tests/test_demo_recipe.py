"""scripts/train_demo_model.py at tiny size, and the bundled demo model it produced."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import liftedgan_hf
from liftedgan_hf import LiftedGAN

ROOT = Path(__file__).resolve().parents[1]
RECIPE = [
    sys.executable,
    str(ROOT / "scripts" / "train_demo_model.py"),
    "--preset", "tiny", "--resolution", "32", "--num-train", "24", "--num-held-out", "6",
    "--teacher-steps", "2", "--lift-steps", "2", "--ablation-steps", "2", "--batch-size", "4",
    "--checkpoint-every", "1", "--inversion-steps", "2", "--lift-pitch-range", "7.5",
]  # fmt: skip


def run_recipe(work: Path, export: Path) -> str:
    result = subprocess.run(
        [*RECIPE, "--work-dir", str(work), "--export-dir", str(export)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_recipe_runs_every_stage_then_skips_them(tmp_path):
    work, export = tmp_path / "work", tmp_path / "export"
    first = run_recipe(work, export)
    for stage in ("data", "held-out data", "teacher", "lift", "ablation", "evaluate"):
        assert f"[{stage}] " in first and f"[{stage}] done already" not in first

    model = LiftedGAN.from_pretrained(export)
    assert model.generate(seed=[0]).image.shape == (1, 3, 32, 32)
    card = (export / "README.md").read_text()
    metrics = json.loads((work / "metrics.json").read_text())
    assert set(metrics) == {"LiftedGAN", "ablation (no flip, no perturbation)", "flat depth", "mean true face depth"}
    assert "| flat depth |" in card and "train_accelerate.py lift" in card and "--lambda_flip 0" in card
    assert "trained for 2 lifting steps instead of 2" in card
    lift_line, ablation_line = (line for line in card.splitlines() if "train_accelerate.py lift" in line)
    assert "--pitch_range 7.5" in lift_line and "--pitch_range" not in ablation_line
    assert "python -m liftedgan_hf.evaluate --model work/lift --ablation work/ablation" in card
    log = json.loads((work / "recipe_log.json").read_text())
    assert all(entry["seconds"] > 0 for entry in log.values())

    # A second run finds every output and only re-exports.
    second = run_recipe(work, export)
    for stage in ("data", "held-out data", "teacher", "lift", "ablation", "evaluate"):
        assert f"[{stage}] done already" in second
    assert json.loads((work / "recipe_log.json").read_text()) == log


def test_readme_images_come_from_the_model(tmp_path):
    from conftest import make_tiny_liftedgan

    make_tiny_liftedgan().save_pretrained(tmp_path / "model")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_readme_images.py"), "--model", str(tmp_path / "model"),
         "--out", str(tmp_path / "images"), "--scale", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    size = 2 * make_tiny_liftedgan().image_size
    with Image.open(tmp_path / "images" / "samples.png") as samples:
        assert samples.size == (8 * size, 6 * size)
    with Image.open(tmp_path / "images" / "yaw_sweep.png") as sweep:
        assert sweep.size == (9 * size, 4 * size)
    with Image.open(tmp_path / "images" / "rotation.gif") as animation:
        assert animation.n_frames == 2 * 21 - 2 and animation.size == (size, size)


def test_bundled_demo_model_loads_offline_and_is_small(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = Path(liftedgan_hf.DEMO_MODEL)
    assert sum(path.stat().st_size for path in folder.iterdir()) <= 25 * 2**20
    model = LiftedGAN.from_pretrained(liftedgan_hf.DEMO_MODEL).eval()
    assert model.config.generator_config["resolution"] >= 64
    output = model.generate(seed=[0, 1])
    assert torch.isfinite(output.image).all() and output.depth.shape[0] == 2
    card = (folder / "README.md").read_text()
    assert "| flat depth |" in card and "train_accelerate.py lift" in card
    # the README shows the bundled model's own benchmark, not an older model's
    table = [line for line in card.splitlines() if line.startswith(("| LiftedGAN |", "| ablation"))]
    readme = (ROOT / "README.md").read_text()
    assert len(table) == 2 and all(row in readme for row in table)


def test_generate_command_uses_the_demo_model_by_default(monkeypatch, tmp_path):
    from liftedgan_hf.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["--seeds", "3", "--yaw", "20", "--outdir", str(tmp_path), "--mesh"])
    size = LiftedGAN.from_pretrained(liftedgan_hf.DEMO_MODEL).image_size
    with Image.open(tmp_path / "seed0003_yaw+20.png") as picture:
        assert picture.size == (size, size)
    assert (tmp_path / "seed0003.glb").stat().st_size > 0


def test_pose_diagnostics_report_every_measure(tmp_path):
    from conftest import make_tiny_liftedgan

    model = make_tiny_liftedgan()
    model.save_pretrained(tmp_path / "model")
    for name, count, first_seed in (("train", 24, 0), ("held_out", 6, 1000)):
        subprocess.run(
            [sys.executable, "-m", "liftedgan_hf.data.synthetic_faces", "--num", str(count), "--resolution",
             str(model.image_size), "--out", str(tmp_path / name), "--first-seed", str(first_seed)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    command = [sys.executable, str(ROOT / "scripts" / "diagnose_pose.py"), "--data", str(tmp_path / "train"),
               "--held-out", str(tmp_path / "held_out"), "--epochs", "1", "--samples", "8"]  # fmt: skip
    regressor = ["--regressor", str(tmp_path / "regressor.pt")]
    result = subprocess.run(
        [*command, *regressor, "--model", str(tmp_path / "model"), "--num-held-out", "4", "--inversion-steps", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "measure" not in line]
    assert len(rows) == 23
    assert all(row.rsplit("|", 2)[1].strip() not in ("nan", "inf") for row in rows)
    assert "| D_V against regressor, teacher samples: yaw slope |" in result.stdout
    assert "| D_V on M(w, view): yaw slope against the view |" in result.stdout
    distance = next(row for row in rows if row.startswith("| distance of M's codes"))
    assert float(distance.rsplit("|", 2)[1]) > 0
    # another teacher's spread, while D_V is still judged on its own teacher's samples
    make_tiny_liftedgan(seed=1).generator.save_pretrained(tmp_path / "other_teacher")
    both = subprocess.run(
        [*command, *regressor, "--model", str(tmp_path / "model"), "--teacher", str(tmp_path / "other_teacher"),
         "--num-held-out", "4", "--inversion-steps", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert both.returncode == 0, both.stderr[-3000:]
    assert both.stdout.count("\n| ") == result.stdout.count("\n| ")
    # the saved regressor is loaded, not trained again: it reads the held-out images exactly as before
    held_out_rows = [row for row in rows if row.startswith("| regressor on held-out") or "held-out images |" in row]
    assert len(held_out_rows) == 6 and all(row in both.stdout for row in held_out_rows)
    (tmp_path / "regressor.pt").write_bytes(b"not a state dict")
    corrupt = subprocess.run([*command, *regressor, "--model", str(tmp_path / "model")], capture_output=True, text=True)
    assert corrupt.returncode == 2 and "is not a pose regressor saved by this script" in corrupt.stderr
    neither = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert neither.returncode == 2 and "give --model, --teacher or both" in neither.stderr
