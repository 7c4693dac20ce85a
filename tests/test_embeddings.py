"""The bundled MiniLM embedder: the fused graph computes the original graph's vectors, batching
and padding do not change a vector, and the fused-graph cache survives damage."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from assistant import minilm_graph
from assistant.embeddings import MAX_PIECES, MiniLMEmbeddings, minilm_files
from assistant.minilm_graph import RewriteError, fuse, fused_model

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "articles"


def _texts() -> list[str]:
    """Short, medium and over-long texts, so batches mix padding and truncation."""
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.md"))).split()
    texts = ["China", "Will China mediate between Russia and Ukraine?"]
    texts += [" ".join(words[i : i + n]) for i, n in ((0, 12), (40, 60), (200, 150), (500, 400))]
    return texts


@pytest.fixture(scope="module")
def unfused() -> MiniLMEmbeddings:
    return MiniLMEmbeddings(fused=False)


def test_fused_graph_gives_the_original_vectors(
    embedder: MiniLMEmbeddings, unfused: MiniLMEmbeddings
) -> None:
    texts = _texts()
    assert embedder.count_pieces(texts[-1]) == MAX_PIECES  # truncated to the window
    fast, reference = embedder.embed_array(texts), unfused.embed_array(texts)
    assert fast.shape == reference.shape == (len(texts), 384)
    cosines = (fast * reference).sum(axis=1)
    assert cosines.min() > 0.99999
    assert np.abs(fast - reference).max() < 1e-4
    kinds = {node.op_type for node in _graph(fuse(minilm_files()[0].read_bytes())).node}
    assert {"Attention", "BiasGelu"} <= kinds and not {"Softmax", "Erf"} & kinds


def _graph(model_bytes: bytes):  # type: ignore[no-untyped-def]
    import onnx

    return onnx.load_from_string(model_bytes).graph


def test_a_vector_does_not_depend_on_its_batch(embedder: MiniLMEmbeddings) -> None:
    texts = _texts()
    together = embedder.embed_array(texts)  # padded to each batch's longest text
    alone = np.stack([embedder.embed_array([t])[0] for t in texts])
    assert ((together * alone).sum(axis=1)).min() > 0.99999
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # and the vectors mean something: a question is closest to the passage that answers it
    q = embedder.embed_query("Which country topped the medal table at the Winter Olympics?")
    sport = embedder.embed_query("Norway won the most gold medals at the Beijing Winter Games.")
    rates = embedder.embed_query("The Federal Reserve raised interest rates by a quarter point.")
    assert np.dot(q, sport) > np.dot(q, rates) + 0.2


def test_fused_model_is_cached_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    source = minilm_files()[0].read_bytes()
    first = fused_model(source, tmp_path)
    cached = [p for p in tmp_path.iterdir() if p.suffix == ".onnx"]
    assert len(cached) == 1 and cached[0].read_bytes() == first
    assert fused_model(source, tmp_path) == first
    cached[0].write_bytes(first[:1000])  # truncated by a crash or a full disk
    assert fused_model(source, tmp_path) == first
    assert cached[0].read_bytes() == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fused-")]


def test_rewrite_refuses_a_graph_it_does_not_know() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    softmax = helper.make_node("Softmax", ["attention_mask"], ["y"])
    graph = helper.make_graph([softmax], "g", [x], [y])
    with pytest.raises(RewriteError):
        fuse(helper.make_model(graph).SerializeToString())
    with pytest.raises(RewriteError, match="attention_mask"):
        fuse(helper.make_model(helper.make_graph([], "empty", [], [])).SerializeToString())


def test_embedder_keeps_the_original_graph_when_the_rewrite_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, unfused: MiniLMEmbeddings
) -> None:
    def refuse(model_bytes: bytes) -> bytes:
        raise RewriteError("structure changed")

    monkeypatch.setattr(minilm_graph, "fuse", refuse)
    with caplog.at_level(logging.WARNING, logger="assistant.embeddings"):
        vectors = MiniLMEmbeddings(fused=True).embed_array(_texts())
    assert "unfused embedding graph: structure changed" in caplog.text
    assert np.allclose(vectors, unfused.embed_array(_texts()), atol=1e-6)
