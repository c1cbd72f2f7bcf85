"""``FaceNet``: the VGG-style FER2013 network we train ourselves (``aigcrec.affect.face_train``), pure torch.

Input x: (B, 1, 48, 48) grey, x = grey / 127.5 - 1 (as the packaged FER CNN). Width w (default 32):

    4 stages, each 2 x [Conv3x3 (no bias), BatchNorm, ReLU] + MaxPool2
        channels w, 2w, 4w, 8w; size 48 -> 24 -> 12 -> 6 -> 3       (B, 8w, 3, 3)
    head: Flatten (B, 72w) -> Dropout(0.4) -> Linear(72w, 256) -> ReLU  = hidden (B, 256)
          -> Dropout(0.4) -> Linear(256, 7)                              = logits (B, 7)

The 7 outputs are in :data:`aigcrec.data.schemas.EMOTIONS` order (FER2013 labels from ``load_fer2013`` are
already in that order, so no re-mapping as for the packaged CNN). Width 32: 1.77 M parameters.

A checkpoint is ``{"network": "face-net", "width": w, "state_dict": ...}`` (``save_face_net`` /
``load_face_net``); ``FaceEncoder("face-net:<file.pt>")`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aigcrec.data.schemas import EMOTIONS

NETWORK = "face-net"
HIDDEN = 256


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2))


class FaceNet(nn.Module):
    """VGG-style 48x48 grey face classifier; ``forward`` gives (B, 7) logits in EMOTIONS order."""

    def __init__(self, width: int = 32, dropout: float = 0.4) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"expected width >= 1, got {width}")
        self.width = width
        chans = [1, width, 2 * width, 4 * width, 8 * width]
        self.stages = nn.Sequential(*[_stage(chans[i], chans[i + 1]) for i in range(4)])
        self.hidden = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(8 * width * 9, HIDDEN),
                                    nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(HIDDEN, len(EMOTIONS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 48, 48) -> logits (B, 7)."""
        return self.classifier(self.hidden(self.stages(x)))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, 1, 48, 48) -> (seq (B, 9, 8w): the last stage's 3x3 map as tokens (row-major),
        hidden (B, 256), logits (B, 7) in EMOTIONS order)."""
        h = self.stages(x)  # (B, 8w, 3, 3)
        hidden = self.hidden(h)
        return h.flatten(2).transpose(1, 2), hidden, self.classifier(hidden)


def save_face_net(net: FaceNet, path: Path) -> Path:
    """Write ``net`` as a face-net checkpoint (atomically: a partial file is renamed at the end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.pt")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save({"network": NETWORK, "width": net.width, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def load_face_net(path: Path) -> FaceNet:
    """A face-net checkpoint as a FaceNet in eval mode (fp32, CPU); anything else: a one-line ValueError."""
    path = Path(path)
    expected = f"a face-net checkpoint ({{'network': 'face-net', 'width', 'state_dict'}}, aigcrec.affect.face_train)"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file, expected {expected}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise ValueError(f"{path}: not readable by torch.load ({type(e).__name__}), expected {expected}") from None
    if not isinstance(ckpt, dict) or ckpt.get("network") != NETWORK or "state_dict" not in ckpt \
            or not isinstance(ckpt.get("width"), int):
        got = sorted(map(str, ckpt))[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: expected {expected}, got {got}")
    net = FaceNet(ckpt["width"])
    try:
        net.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"{path}: face-net state_dict does not fit width {ckpt['width']} ({first})") from None
    return net.eval()
