"""Face: Haar detection, eye-line alignment and crop, then a face CNN (offline) or a ViT (``hf:``).

``fer-cnn``: the FER2013 CNN of ``facial-emotion-recognition`` (48x48 grey); seq = its last feature map as
9 tokens of 256-d (3x3 grid), pooled = [hidden (256), class scores (7)] (263-d).
``fer-cnn:<file.pt>``: the same network with weights we trained (``aigcrec.affect.face_train``, network fer-cnn).
``face-net:<file.pt>``: the VGG-style network we train on FER2013 (``encoders/face_net.py``, width w); seq = its
last stage's 3x3 map as 9 tokens of 8w-d, pooled = [hidden (256), class probabilities (softmax, 7)] (263-d),
computed in fp32. Both offline paths read 48x48 grey crops, x = grey / 127.5 - 1, scores in EMOTIONS order.
``hf:<ViT name or folder>`` (e.g. ``hf:trpakov/vit-face-expression``): seq = patch tokens, pooled = [CLS].
An image without a detectable face is a missing modality.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from aigcrec.affect.encoders.base import ModalityEncoder, hf_name
from aigcrec.affect.encoders.face_net import HIDDEN, load_face_net
from aigcrec.affect.encoders.fer_cnn import fer_features, load_fer_cnn
from aigcrec.affect.inputs import decode_face


@lru_cache(maxsize=2)
def _cascade(name: str):
    import cv2  # lazy: OpenCV (about a second to import) loads only on the paths that use it

    c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if c.empty():
        raise RuntimeError(f"OpenCV Haar cascade {name} not found (opencv-python-headless<5 ships them)")
    return c


def detect_face(rgb: np.ndarray, margin: float = 0.1, size: int = 48, scale_factor: float = 1.05,
                min_neighbors: int = 3, pad: float = 1 / 6) -> np.ndarray | None:
    """Largest frontal face of an (H, W, 3) uint8 image as a (size, size) uint8 grey crop, or None.

    Padding: the grey image first gets a border of ``pad`` x its shorter side (edge pixels repeated), so a
    face that fills the frame or touches its edge is still inside a detection window (on the world's 96 px
    faces: found in 74 % instead of 59 %, at the same 18 % false-positive rate on its non-portrait
    illustrations). Alignment: if two eyes are found in the upper half of the face box, the image is rotated
    about the face centre by atan2(dy, dx) of the eye centres so the eye line is horizontal.
    """
    import cv2  # lazy: OpenCV (about a second to import) loads only on the paths that use it

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    min_side = max(24, min(grey.shape) // 10)
    border = int(round(pad * min(grey.shape)))
    if border > 0:
        grey = cv2.copyMakeBorder(grey, border, border, border, border, cv2.BORDER_REPLICATE)
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        grey, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(grey[y: y + h // 2, x: x + w], 1.1, 5)
    if len(eyes) >= 2:
        (ax, ay, aw, ah), (bx, by, bw, bh) = sorted(sorted(eyes, key=lambda e: -e[2])[:2], key=lambda e: e[0])
        angle = np.degrees(np.arctan2((by + bh / 2) - (ay + ah / 2), (bx + bw / 2) - (ax + aw / 2)))
        if abs(angle) < 30:  # larger angles are more likely a false eye than a tilted head
            rot = cv2.getRotationMatrix2D((float(x + w / 2), float(y + h / 2)), float(angle), 1.0)
            grey = cv2.warpAffine(grey, rot, (grey.shape[1], grey.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    m = int(round(margin * w))
    x0, y0 = max(0, x - m), max(0, y - m)
    crop = grey[y0: y + h + m, x0: x + w + m]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


class FaceEncoder(ModalityEncoder):
    """Images to face tokens; ``detect='none'`` treats every image as an aligned face crop (FER2013)."""

    modality = "face"

    def __init__(self, name: str = "fer-cnn", detect: str = "haar", margin: float = 0.1, scale_factor: float = 1.05,
                 min_neighbors: int = 3, pad: float = 1 / 6) -> None:
        self.name, self.detect, self.margin = name, detect, margin
        self.scale_factor, self.min_neighbors, self.pad = scale_factor, min_neighbors, pad
        hub = hf_name(name)
        if hub is not None:
            # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
            from transformers import AutoImageProcessor, AutoModel

            self.processor = AutoImageProcessor.from_pretrained(hub)
            self.model = AutoModel.from_pretrained(hub).eval()
            self.seq_dim = self.pooled_dim = int(self.model.config.hidden_size)
            self.crop_size = 224
        elif name == "fer-cnn" or name.startswith("fer-cnn:"):
            self.model = load_fer_cnn(pretrained=name == "fer-cnn")
            if name.startswith("fer-cnn:"):
                self.model.load_state_dict(torch.load(name[len("fer-cnn:"):], map_location="cpu", weights_only=True))
            self.processor = None
            self.seq_dim, self.pooled_dim, self.crop_size = 256, 256 + 7, 48
        elif name.startswith("face-net:"):
            self.model = load_face_net(name[len("face-net:"):])
            self.processor = None
            self.seq_dim, self.pooled_dim, self.crop_size = 8 * self.model.width, HIDDEN + 7, 48
        else:
            raise ValueError("expected face encoder 'fer-cnn', 'fer-cnn:<weights.pt>', 'face-net:<checkpoint.pt>' "
                             f"or 'hf:<name>', got {name!r}")

    def _prepare(self, item: Any) -> np.ndarray | None:
        rgb = decode_face(item)
        if self.detect == "none":
            import cv2  # lazy: OpenCV (about a second to import) loads only on the paths that use it

            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            return cv2.resize(grey, (self.crop_size, self.crop_size), interpolation=cv2.INTER_AREA)
        return detect_face(rgb, self.margin, self.crop_size, self.scale_factor, self.min_neighbors, self.pad)

    def _encode_present(self, items: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        grey = np.stack(items)  # (B, S, S) uint8
        with torch.inference_mode():
            if self.processor is None:
                x = torch.from_numpy(grey).float().unsqueeze(1) / 127.5 - 1.0  # (B, 1, 48, 48)
                if self.name.startswith("face-net:"):
                    seq, hidden, logits = self.model.features(x)  # (B, 9, 8w), (B, 256), (B, 7)
                    scores = logits.softmax(1)
                else:
                    seq, hidden, scores = fer_features(self.model, x)  # (B, 9, 256), (B, 256), (B, 7)
                pooled = torch.cat([hidden, scores], dim=1)  # (B, 263)
            else:
                rgb = np.repeat(grey[..., None], 3, axis=3)  # (B, S, S, 3)
                inputs = self.processor(images=list(rgb), return_tensors="pt")
                h = self.model(**inputs).last_hidden_state  # (B, 1 + patches, H)
                seq, pooled = h[:, 1:], h[:, 0]
        seq_np = seq.float().numpy()
        return [s for s in seq_np], pooled.float().numpy()
