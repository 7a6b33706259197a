"""Packaging: every sub-package is listed in pyproject.toml and the model-card templates ship."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "liftedgan_hf").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found | {"liftedgan_hf.model_cards"} == listed


def test_model_card_templates_ship_with_the_package():
    from importlib import resources

    names = {entry.name for entry in resources.files("liftedgan_hf.model_cards").iterdir()}
    assert {"liftedgan.md", "stylegan2.md"} <= names
