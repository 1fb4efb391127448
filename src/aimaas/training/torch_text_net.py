"""The network of the ``text_transformer`` trainer: a small Transformer encoder classifier over token ids.

This module imports torch at the top: :mod:`aimaas.training.torch_text` imports it inside the functions that
train, predict or export, so registering the trainer stays cheap.

The encoder is written out (pre-norm blocks, explicit attention) rather than built from
``torch.nn.TransformerEncoder``: torch's TorchScript ONNX exporter bakes the traced sequence length into
``nn.MultiheadAttention``'s reshapes (the graph then fails on any other length), its fast path uses nested
tensors, and the dynamo exporter needs onnxscript. Every operation here is a plain tensor op whose shape
follows the inputs, so one exported graph serves any batch size and any length up to ``max_length``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["NetConfig", "ProbabilityModel", "TextClassifier"]

_MASKED = -1e9  # added to attention scores of padding; finite, so a row of padding only still gives numbers


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Shapes of :class:`TextClassifier` (JSON-safe through :meth:`to_dict` / ``NetConfig(**d)``)."""

    vocab_size: int
    max_length: int
    d_model: int
    n_heads: int
    n_layers: int
    ff_dim: int
    dropout: float
    n_classes: int
    pad_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # [B, L, 3D] -> three [B, H, L, Dh]; only constant sizes are named, so B and L stay dynamic in ONNX.
        q, k, v = self.qkv(x).unflatten(-1, (3, self.n_heads, self.head_dim)).permute(2, 0, 3, 1, 4).unbind(0)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)) + bias
        weights = self.drop(torch.softmax(scores, dim=-1))
        return self.out(torch.matmul(weights, v).transpose(1, 2).flatten(2))


class _Block(nn.Module):
    """Pre-norm encoder block: ``x + attention(norm(x))``, then ``x + feed_forward(norm(x))``."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = _SelfAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(ff_dim, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm1(x), bias))
        return x + self.drop(self.feed_forward(self.norm2(x)))


class TextClassifier(nn.Module):
    """Token + learned position embeddings, ``n_layers`` encoder blocks, a final LayerNorm, mean pooling over
    the attention mask and a linear layer. ``forward(input_ids, attention_mask=None)`` returns class logits
    ``[B, n_classes]``; without a mask, every id other than ``pad_id`` counts."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.tokens = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        self.positions = nn.Embedding(config.max_length, d)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(d, config.n_heads, config.ff_dim, config.dropout)
                                    for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, config.n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_id
        mask = attention_mask.to(self.tokens.weight.dtype)
        # Positions from a cumulative sum rather than arange(L): the exported graph keeps L symbolic.
        positions = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
        h = self.drop(self.tokens(input_ids) + self.positions(positions))
        bias = ((1.0 - mask) * _MASKED)[:, None, None, :]
        for block in self.blocks:
            h = block(h, bias)
        h = self.norm(h)
        pooled = (h * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.classifier(pooled)


class ProbabilityModel(nn.Module):
    """What is exported: ``softmax(classifier(input_ids, attention_mask))``."""

    def __init__(self, net: TextClassifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(input_ids, attention_mask), dim=-1)
