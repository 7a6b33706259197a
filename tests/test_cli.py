"""liftedgan-generate: argument parsing and a real run on a tiny saved model."""

import argparse

import pytest
from PIL import Image

from liftedgan_hf.cli import main, parse_angles, parse_seeds


def test_parse_seeds_and_angles():
    assert parse_seeds("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_angles("-45:45:15") == [-45.0, -30.0, -15.0, 0.0, 15.0, 30.0, 45.0]
    assert parse_angles("30") == [30.0]
    assert parse_angles("-10,0,10") == [-10.0, 0.0, 10.0]
    for bad in ("a-b", "5-2", "-3"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_seeds(bad)
    for bad in ("1:2", "5:0:1", "0:10:0", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_angles(bad)


def test_generate_command_writes_every_output(tiny_liftedgan, tmp_path, capsys):
    tiny_liftedgan.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    main(
        [
            "--model",
            str(tmp_path / "model"),
            "--seeds",
            "0-2",
            "--yaw",
            "-30:30:30",
            "--outdir",
            str(out),
            "--mesh",
            "--gif",
            "--batch-size",
            "2",
        ]
    )
    names = {path.name for path in out.iterdir()}
    for seed in range(3):
        for field in ("image", "canonical_texture", "albedo", "depth", "normal"):
            assert f"seed{seed:04d}_{field}.png" in names
        for yaw in ("-30", "+00", "+30"):
            assert f"seed{seed:04d}_yaw{yaw}.png" in names
        assert f"seed{seed:04d}.glb" in names
        assert f"seed{seed:04d}_rotation.gif" in names
    assert Image.open(out / "seed0001_yaw+30.png").size == (32, 32)
    assert "wrote 3 faces" in capsys.readouterr().out


def test_generate_command_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path), "--outdir", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "cannot load a LiftedGAN" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path), "--yaw", "100", "--outdir", str(tmp_path / "o")])
    assert "within [-90, 90]" in capsys.readouterr().err
