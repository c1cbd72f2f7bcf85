"""``ContentEncoder``: the image and text encoders together; encodes one new item in-process for the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from aigcrec.content.config import ContentConfig
from aigcrec.content.image_encoder import DualOutputImageEncoder
from aigcrec.content.images import ImageInput
from aigcrec.content.pairs import item_text
from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder
from aigcrec.saved import read_config, write_config

FORMAT = 1  # layout of the saved folder (aigcrec.saved)


class ContentEncoder:
    """``e_sem``, ``e_sty`` (+ ``e_sty_magenta``) from the image; ``e_tsem`` from titles and tags."""

    def __init__(self, config: ContentConfig | None = None, image: DualOutputImageEncoder | None = None,
                 text: MultiPerspectiveTextEncoder | None = None) -> None:
        self.config = config or ContentConfig()
        self.image = image or DualOutputImageEncoder(self.config.image)
        self.text = text or MultiPerspectiveTextEncoder(self.config.text)

    @property
    def versions(self) -> dict[str, str]:
        return {"image": self.image.version, "text": self.text.version}

    def encode_item(self, image: ImageInput | None, title: str = "", tags: Sequence[dict[str, str] | str] = (),
                    **titles: str) -> dict[str, np.ndarray]:
        """Features of ONE item, as the feature store would compute them: a dict of 1-d float32 vectors.

        ``image``: path, bytes, PIL image or uint8 array (None: no image features); ``tags``: dicts
        ``{"text", "lang"}`` or plain strings; ``titles``: optional ``title_ja=...``, ``title_zh=...``.
        Raises ``ImageProblem`` for an unreadable image and ``ValueError`` when there is no text.
        """
        out: dict[str, np.ndarray] = {}
        if image is not None:
            out.update({k: v[0] for k, v in self.image.encode([image], batch_size=1).items()})
        tag_dicts = [t if isinstance(t, dict) else {"text": str(t), "lang": "en"} for t in tags]
        text = item_text({"title": title, "tags": tag_dicts, **titles})
        if not text:
            raise ValueError("expected a title or at least one tag for e_tsem, got neither")
        out["e_tsem"] = self.text.encode([text])[0]
        return out

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (``aigcrec.saved``, component ``content_encoder``) and the two encoders
        (``image/``, ``text/``) to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.image.save(path / "image")
        self.text.save(path / "text")
        write_config(path, "content_encoder", FORMAT, self.config.model_dump(mode="json"), indent=2)
        return path

    @classmethod
    def load(cls, path: str | Path, **image_overrides: Any) -> "ContentEncoder":
        path = Path(path)
        body, _, _ = read_config(path, "content_encoder", FORMAT)  # content.json before, still read
        config = ContentConfig.model_validate(body)
        return cls(config, DualOutputImageEncoder.load(path / "image", **image_overrides),
                   MultiPerspectiveTextEncoder.load(path / "text"))
