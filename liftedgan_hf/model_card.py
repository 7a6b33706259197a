"""Model cards written next to the weights by ``save_pretrained``."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

UNKNOWN = "Not recorded."

DEFAULT_FIELDS = {
    "license": "mit",
    "description": "",
    "model_id": "path/to/this/folder",
    "training_data": UNKNOWN,
    "training_procedure": UNKNOWN,
    "metrics": UNKNOWN,
}


def render_model_card(template_name: str, **fields: object) -> str:
    """Fill the template ``model_cards/<template_name>.md`` with ``fields`` (defaults for the rest)."""
    template = resources.files("liftedgan_hf.model_cards").joinpath(f"{template_name}.md").read_text()
    values = {**DEFAULT_FIELDS, **{key: value for key, value in fields.items() if value is not None}}
    # How the card's code names the model; the bundled demo model, for one, is a Python constant.
    values.setdefault("imports", "LiftedGAN")
    model_id = values["model_id"]
    values.setdefault("model_reference", f'"{model_id}"')
    values.setdefault("model_flag", f"--model {model_id} ")
    return template.format(**values)


def write_model_card(path: str | os.PathLike, template_name: str, **fields: object) -> Path:
    """Write a filled model card to ``path`` (written to a temporary file first, then moved)."""
    path = Path(path)
    text = render_model_card(template_name, **fields)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


class ModelCardMixin:
    """Adds a model card to ``save_pretrained`` and ``push_to_hub`` of a diffusers ``ModelMixin``.

    Subclasses name their template in ``model_card_template`` and give their own fields in
    :meth:`model_card_fields`; callers may add or override fields with ``model_card={...}``
    (e.g. the training recipe and metrics).
    """

    model_card_template: str = ""
    _hub_arguments = ("repo_id", "private", "token", "commit_message", "create_pr")

    def model_card_fields(self) -> dict[str, object]:
        raise NotImplementedError

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *args,
        model_card: dict[str, object] | None = None,
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """Save weights (safetensors), config and ``README.md``; optionally upload the folder."""
        hub = {key: kwargs.pop(key) for key in self._hub_arguments if key in kwargs}
        super().save_pretrained(save_directory, *args, **kwargs)
        if not kwargs.get("is_main_process", True):
            return
        write_model_card(
            Path(save_directory) / "README.md",
            self.model_card_template,
            **{**self.model_card_fields(), **(model_card or {})},
        )
        if push_to_hub:
            self._upload(save_directory, hub.pop("repo_id", Path(save_directory).name), **hub)

    def push_to_hub(self, repo_id: str, model_card: dict[str, object] | None = None, **kwargs) -> object:
        """Save to a temporary folder (with the model card) and upload it to ``repo_id``."""
        import tempfile

        hub = {key: kwargs.pop(key) for key in self._hub_arguments if key in kwargs}
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, model_card={"model_id": repo_id, **(model_card or {})}, **kwargs)
            return self._upload(folder, repo_id, **hub)

    @staticmethod
    def _upload(folder, repo_id, private=None, token=None, commit_message=None, create_pr=False):
        from huggingface_hub import create_repo, upload_folder

        repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        return upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            token=token,
            commit_message=commit_message or "Upload model",
            create_pr=create_pr,
        )
