"""The bundled MiniLM embedder: the fused graph computes the shipped graph's vectors, batching
and padding do not change a vector, and a graph the rewrite does not know is left alone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.models import minilm_graph
from assistant.models.embeddings import MAX_PIECES, MiniLMEmbeddings, minilm_files
from assistant.models.minilm_graph import RewriteError, fuse

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "articles"


def _texts() -> list[str]:
    """Short, medium and over-long texts, so batches mix padding and truncation."""
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.md"))).split()
    texts = ["China", "Will China mediate between Russia and Ukraine?"]
    texts += [" ".join(words[i : i + n]) for i, n in ((0, 12), (40, 60), (200, 150), (500, 400))]
    return texts


def _model(model_bytes: bytes) -> Any:
    import onnx

    return onnx.load_from_string(model_bytes)


@pytest.fixture(scope="module")
def unfused() -> MiniLMEmbeddings:
    return MiniLMEmbeddings(fused=False)


def test_fused_graph_gives_the_original_vectors(
    embedder: MiniLMEmbeddings, unfused: MiniLMEmbeddings
) -> None:
    texts = _texts()
    assert embedder.count_pieces(texts[-1]) == MAX_PIECES  # truncated to the window
    fast, reference = embedder.embed_array(texts), unfused.embed_array(texts)
    assert (embedder.graph, unfused.graph) == ("fused", "shipped")
    assert fast.shape == reference.shape == (len(texts), 384)
    cosines = (fast * reference).sum(axis=1)
    assert cosines.min() > 0.99999
    assert np.abs(fast - reference).max() < 1e-4
    kinds = {node.op_type for node in _model(fuse(minilm_files()[0].read_bytes())).graph.node}
    assert {"Attention", "BiasGelu"} <= kinds and not {"Softmax", "Erf"} & kinds


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


@pytest.mark.parametrize("edit", ["gelu-constant", "softmax-axis", "unmasked"])
def test_rewrite_refuses_an_edited_model(edit: str) -> None:
    """The real model with one thing changed that the fused kernels would get wrong."""
    from onnx import helper, numpy_helper

    model = _model(minilm_files()[0].read_bytes())
    graph = model.graph
    if edit == "gelu-constant":  # x / 2 instead of x / sqrt(2) inside the erf
        div = next(n for n in graph.node if n.op_type == "Div" and "Erf" in _users(graph, n))
        init = next(i for i in graph.initializer if i.name == div.input[1])
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 0 + 2, init.name))
        match = "not the erf GELU"
    elif edit == "softmax-axis":
        softmax = next(n for n in graph.node if n.op_type == "Softmax")
        del softmax.attribute[:]
        softmax.attribute.append(helper.make_attribute("axis", 1))
        match = "softmax over axis 1"
    else:  # scores no longer masked by attention_mask
        softmax = next(n for n in graph.node if n.op_type == "Softmax")
        add = next(n for n in graph.node if softmax.input[0] in n.output)
        add.input[1] = add.input[0]
        match = "does not come from attention_mask"
    with pytest.raises(RewriteError, match=match):
        fuse(model.SerializeToString())


def _users(graph: Any, node: Any) -> set[str]:
    return {n.op_type for n in graph.node if set(node.output) & set(n.input)}


def test_embedder_keeps_the_original_graph_when_the_rewrite_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, unfused: MiniLMEmbeddings
) -> None:
    def refuse(model_bytes: bytes) -> bytes:
        raise RewriteError("structure changed")

    monkeypatch.setattr(minilm_graph, "fuse", refuse)
    fallback = MiniLMEmbeddings(fused=True)
    with caplog.at_level(logging.WARNING, logger="assistant.models.embeddings"):
        vectors = fallback.embed_array(_texts())
    assert "unfused embedding graph: structure changed" in caplog.text
    assert fallback.graph == "shipped" and not fallback.fused
    assert np.allclose(vectors, unfused.embed_array(_texts()), atol=1e-6)
