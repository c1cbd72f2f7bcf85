"""The FER2013 CNN of the ``facial-emotion-recognition`` package, loaded without importing the package.

The package's ``__init__`` imports torchvision and facenet-pytorch; we read only its ``networks.py``
(by file path) and ``model/model.pkl`` (a dict with the state dict under ``'network'``).
Network: 4 conv blocks (32, 64, 128, 256 channels; 48 -> 6 px), Linear(9216, 256), ReLU, Linear(256, 7),
sigmoid. Input (B, 1, 48, 48) grey, (x / 255 - 0.5) / 0.5. Its classes are FER2013's order
(angry, disgust, fear, happy, sad, surprise, neutral); ``FER_TO_EMOTIONS`` maps them to ``EMOTIONS``.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aigcrec.data.schemas import EMOTIONS

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_EMOTIONS: np.ndarray = np.array([EMOTIONS.index(e) for e in
                                        ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")])
"""FER2013 class index -> index in ``EMOTIONS``."""


def package_dir() -> Path:
    """Folder of ``facial_emotion_recognition`` found without executing its ``__init__``."""
    spec = importlib.util.find_spec("facial_emotion_recognition")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("facial-emotion-recognition is not installed "
                          "(pip install --no-deps facial-emotion-recognition==0.3.4)")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def _network_class() -> type:
    path = package_dir() / "networks.py"
    spec = importlib.util.spec_from_file_location("aigcrec_fer_networks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NetworkV2


def load_fer_cnn(pretrained: bool = True):
    """The FER2013 CNN in eval mode, with the package's weights unless ``pretrained=False``."""
    net = _network_class()(in_c=1, nl=32, out_f=7)
    if pretrained:
        state = torch.load(package_dir() / "model" / "model.pkl", map_location="cpu", weights_only=True)
        net.load_state_dict(state["network"])
    return net.eval()


def fer_features(net, x):
    """Run the CNN keeping its internals.

    x: (B, 1, 48, 48) normalised grey. Returns (feature map 2x2-average-pooled to 9 tokens (B, 9, 256),
    hidden (B, 256), class scores (B, 7) in EMOTIONS order, sigmoid outputs as the package trained them).
    """
    h = net.conv_4(net.conv_3(net.conv_2(net.conv_1(x))))  # (B, 256, 6, 6)
    seq = F.avg_pool2d(h, 2).flatten(2).transpose(1, 2)  # (B, 9, 256)
    hidden = net.linear[1](net.linear[0](h.reshape(h.shape[0], -1)))  # (B, 256)
    scores = net.linear[3](net.linear[2](hidden))  # (B, 7) FER order
    return seq, hidden, scores[:, np.argsort(FER_TO_EMOTIONS)]
