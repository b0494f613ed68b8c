"""The Transformer: Attention Is All You Need, Vaswani et al. 2017 (NeurIPS), Sec. 3 and Fig. 1.

https://arxiv.org/abs/1706.03762

Encoder: N layers of [multi-head self-attention, position-wise FFN] (Sec. 3.1). Decoder: N
layers of [masked self-attention, encoder-decoder attention, FFN]. Each sub-layer is wrapped as
LayerNorm(x + Dropout(Sublayer(x))) (post-LN, the paper) or x + Dropout(Sublayer(LayerNorm(x)))
with a final LayerNorm (pre-LN, ``norm_first``: Xiong et al. 2020, trains without warmup
trouble). FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (Eq. 2). Embeddings are multiplied by √d_model
and summed with the positional encoding (Sec. 3.4-3.5), then dropped out (Sec. 5.4).
``share_embeddings``: 'all' ties the source and target embeddings and the pre-softmax projection
(Sec. 3.4; needs one joint vocabulary), 'decoder' ties the target embedding and the projection
only, 'none' ties nothing. Base sizes: N = 6, d_model = 512, d_ff = 2048, h = 8, dropout 0.1.

Each attention can be replaced by the generalized attention of Zhu et al. 2019 (see
``attention/generalized.py``) through a 4-bit type per kind: ``attention_types.encoder_self``,
``decoder_self``, ``encoder_decoder``; '1000' is the paper's attention.

Decoding uses the step interface of ``tasks/decoding.py``. With ``kv_cache`` the decoder keeps
each layer's self-attention keys and values of the tokens so far and projects the encoder output
once per sentence, so a step costs one position; without it a step re-runs the decoder over the
whole prefix (the same numbers, for the speed comparison).

Seeds pair the attention variants: every attention module draws its initial weights from a stream
of its own (``engine/seeding.py: own_random_stream``, keyed by layer and kind), so seed s gives every
choice of ``attention_types`` the same embeddings, FFNs and norms, and leaves the global generator
(which then draws the dropout masks) where the paper's attention would. Records before 2026-12-04
drew the attention weights from the global stream, interleaved with the FFNs' (same distributions).

Departures: dropout inside attention (on the weights, ``attention_dropout``) follows the
tensor2tensor code rather than the paper's text, which names only residual and embedding dropout;
weights are initialized Xavier-uniform and embeddings N(0, d_model^-0.5) (the paper does not say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.attention.generalized import build_attention, parse_terms
from attention_zoo.attention.positions import PositionalEncoding
from attention_zoo.attention.scaled_dot_product import MultiHeadAttention
from attention_zoo.choices import check_choice
from attention_zoo.data.text import PAD
from attention_zoo.engine.seeding import own_random_stream

SHARING = ("all", "decoder", "none")
ATTENTION_KINDS = ("encoder_self", "decoder_self", "encoder_decoder")


def _xavier_and_zero_bias(named_parameters) -> None:
    for name, param in named_parameters:
        if name.endswith("weight") and param.dim() > 1 and "embed" not in name and "positions" not in name:
            nn.init.xavier_uniform_(param)
        elif name.endswith("bias"):
            nn.init.zeros_(param)


@dataclass
class TransformerConfig:
    src_vocab: int
    tgt_vocab: int
    d_model: int = 512
    heads: int = 8
    d_k: int | None = None  # per head; None = d_model / heads (Table 3 row B varies it)
    d_v: int | None = None
    d_ff: int = 2048
    encoder_layers: int = 6
    decoder_layers: int = 6
    dropout: float = 0.1  # P_drop on sub-layer outputs and on embeddings + positions
    attention_dropout: float = 0.1
    positions: str = "sinusoidal"  # sinusoidal | learned | none
    max_positions: int = 512
    norm_first: bool = False  # pre-LN instead of the paper's post-LN
    share_embeddings: str = "all"  # all | decoder | none
    kv_cache: bool = True
    attention_types: dict[str, str] = field(
        default_factory=lambda: {"encoder_self": "1000", "decoder_self": "1000", "encoder_decoder": "1000"}
    )

    def __post_init__(self):
        check_choice("model.share_embeddings", self.share_embeddings, SHARING)
        if self.share_embeddings == "all" and self.src_vocab != self.tgt_vocab:
            raise ValueError(
                f"model.share_embeddings=all ties the source and target embeddings, but the vocabularies differ "
                f"({self.src_vocab} vs {self.tgt_vocab}). Use one joint vocabulary (data.tokenizer=bpe "
                f"data.joint_vocab=true) or model.share_embeddings=decoder."
            )
        unknown = set(self.attention_types) - set(ATTENTION_KINDS)
        if unknown:
            raise ValueError(f"Unknown model.attention_types {sorted(unknown)}; valid: {', '.join(ATTENTION_KINDS)}.")
        for kind in ATTENTION_KINDS:
            parse_terms(self.attention_types.get(kind, "1000"))

    def attention(self, kind: str, layer: int) -> nn.Module:
        """The attention of ``kind`` in layer ``layer`` of its stack, built and initialized (Xavier-uniform
        matrices, zero biases) from its own random stream, keyed by (layer, kind)."""
        with own_random_stream(layer, ATTENTION_KINDS.index(kind)):
            module = build_attention(
                self.attention_types.get(kind, "1000"), self.d_model, self.heads, self.d_k, self.d_v, self.attention_dropout
            )
            _xavier_and_zero_bias(module.named_parameters())
        return module


class FeedForward(nn.Sequential):
    """Eq. 2: two linear maps with a ReLU between, applied at every position."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))


class Residual(nn.Module):
    """One sub-layer's wrapper: post-LN LayerNorm(x + Dropout(f(x))) or pre-LN x + Dropout(f(LayerNorm(x)))."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm, self.dropout, self.norm_first = nn.LayerNorm(d_model), nn.Dropout(dropout), norm_first

    def forward(self, x: torch.Tensor, sublayer) -> torch.Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))
        return self.norm(x + self.dropout(sublayer(x)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig, layer: int):
        super().__init__()
        self.self_attention = cfg.attention("encoder_self", layer)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff)
        self.residuals = nn.ModuleList(Residual(cfg.d_model, cfg.dropout, cfg.norm_first) for _ in range(2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, weights: list | None = None) -> torch.Tensor:
        """x (B, S, d_model), mask (B, S) True at real tokens; appends (B, h, S, S) to ``weights`` if given."""

        def attend(h):
            out, w = self.self_attention(h, h, h, key_mask=mask, need_weights=weights is not None)
            if weights is not None:
                weights.append(w)
            return out

        x = self.residuals[0](x, attend)
        return self.residuals[1](x, self.ffn)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerConfig, layer: int):
        super().__init__()
        self.self_attention = cfg.attention("decoder_self", layer)
        self.cross_attention = cfg.attention("encoder_decoder", layer)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff)
        self.residuals = nn.ModuleList(Residual(cfg.d_model, cfg.dropout, cfg.norm_first) for _ in range(3))

    def forward(
        self,
        y: torch.Tensor,  # (B, T, d_model) the targets at positions offset..offset+T-1
        cross_kv: tuple[torch.Tensor, torch.Tensor],  # encoder output projected: (B, h, S, d_k), (B, h, S, d_v)
        src_mask: torch.Tensor,  # (B, S)
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,  # cached self-attention K, V (B, h, offset, d)
        weights: dict[str, list] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns y (B, T, d_model) and the self-attention K, V of positions 0..offset+T-1."""
        offset = 0 if past_kv is None else past_kv[0].shape[2]
        need = weights is not None
        self_kv = None

        def self_attend(h):
            nonlocal self_kv
            k, v = self.self_attention.project_kv(h, h)
            if past_kv is not None:
                k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
            self_kv = (k, v)
            out, w = self.self_attention.attend(h, k, v, causal=True, need_weights=need, query_offset=offset)
            if need:
                weights["decoder_self"].append(w)
            return out

        def cross_attend(h):
            out, w = self.cross_attention.attend(h, *cross_kv, key_mask=src_mask, need_weights=need, query_offset=offset)
            if need:
                weights["encoder_decoder"].append(w)
            return out

        y = self.residuals[0](y, self_attend)
        y = self.residuals[1](y, cross_attend)
        return self.residuals[2](y, self.ffn), self_kv


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, d, padding_idx=PAD)
        self.src_embed = self.tgt_embed if cfg.share_embeddings == "all" else nn.Embedding(cfg.src_vocab, d, padding_idx=PAD)
        self.out = None if cfg.share_embeddings != "none" else nn.Linear(d, cfg.tgt_vocab, bias=False)
        self.positions = PositionalEncoding(cfg.positions, d, cfg.max_positions)
        self.dropout = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(cfg, i) for i in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.decoder_layers))
        self.encoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform matrices and zero biases, except the attentions' (initialized in their own
        streams by ``TransformerConfig.attention``); embeddings N(0, d_model^-0.5)."""
        attention_params = {
            param for module in self.modules() if isinstance(module, MultiHeadAttention) for param in module.parameters()
        }
        _xavier_and_zero_bias((name, param) for name, param in self.named_parameters() if param not in attention_params)
        for embedding in {self.src_embed, self.tgt_embed}:
            nn.init.normal_(embedding.weight, std=self.cfg.d_model**-0.5)
            nn.init.zeros_(embedding.weight[PAD])

    # ------------------------------------------------------------------ pieces
    def _embed(self, table: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, L) ids -> dropout(E ids · √d_model + PE) (B, L, d_model)."""
        return self.dropout(self.positions(table(ids) * self.cfg.d_model**0.5, offset))

    def _logits(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, T, V), through the tied embedding matrix unless untied."""
        return self.out(y) if self.out is not None else F.linear(y, self.tgt_embed.weight)

    def _encode(self, src, src_len, weights: dict[str, list] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len[:, None].to(src.device)  # (B, S)
        x = self._embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x, mask, weights["encoder_self"] if weights is not None else None)
        return self.encoder_norm(x), mask

    def _decode(self, tgt_in, cross_kv, src_mask, past=None, weights=None, last_layer_weights=False):
        """Decoder over targets at positions offset.. (offset = cached length). Returns logits (B, T, V)
        and the new caches; fills ``weights`` from every layer, or the last only."""
        offset = 0 if past is None else past[0][0].shape[2]
        y = self._embed(self.tgt_embed, tgt_in, offset)
        caches = []
        for i, layer in enumerate(self.decoder):
            wanted = weights if not last_layer_weights or i == len(self.decoder) - 1 else None
            y, kv = layer(y, cross_kv[i], src_mask, None if past is None else past[i], wanted)
            caches.append(kv)
        return self._logits(self.decoder_norm(y)), caches

    # ------------------------------------------------------------------ training
    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, S), (B,), (B, T) -> logits (B, T, V)."""
        memory, mask = self._encode(src, src_len)
        cross_kv = [layer.cross_attention.project_kv(memory, memory) for layer in self.decoder]
        return self._decode(tgt_in, cross_kv, mask)[0]

    @torch.no_grad()
    def attention_weights(self, src, src_len, tgt_in) -> dict[str, list[torch.Tensor]]:
        """Teacher-forced attention weights by kind, one (B, h, T_q, T_k) tensor per layer:
        encoder_self (S x S), decoder_self (T x T), encoder_decoder (T x S)."""
        weights = {kind: [] for kind in ATTENTION_KINDS}
        memory, mask = self._encode(src, src_len, weights)
        cross_kv = [layer.cross_attention.project_kv(memory, memory) for layer in self.decoder]
        self._decode(tgt_in, cross_kv, mask, weights=weights)
        return weights

    # ------------------------------------------------------------------ decoding (tasks/decoding.py)
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, torch.Tensor]:
        memory, mask = self._encode(src, src_len)
        projected = {"mask": mask}
        for i, layer in enumerate(self.decoder):
            projected[f"cross_k{i}"], projected[f"cross_v{i}"] = layer.cross_attention.project_kv(memory, memory)
        return projected

    def start(self, memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch, device = memory["mask"].shape[0], memory["mask"].device
        if not self.cfg.kv_cache:
            return {"prefix": torch.empty(batch, 0, dtype=torch.long, device=device)}
        state = {}
        for i, layer in enumerate(self.decoder):
            attention = layer.self_attention
            state[f"k{i}"] = memory["cross_k0"].new_zeros(batch, attention.heads, 0, attention.d_k)
            state[f"v{i}"] = memory["cross_k0"].new_zeros(batch, attention.heads, 0, attention.d_v)
        return state

    def step(self, prev: torch.Tensor, state: dict[str, torch.Tensor], memory: dict[str, torch.Tensor]):
        """prev (B,) -> log-probabilities (B, V), the new state, and the last layer's encoder-decoder
        weights averaged over heads (B, S)."""
        layers = range(len(self.decoder))
        cross_kv = [(memory[f"cross_k{i}"], memory[f"cross_v{i}"]) for i in layers]
        weights = {kind: [] for kind in ATTENTION_KINDS}
        if self.cfg.kv_cache:
            past = [(state[f"k{i}"], state[f"v{i}"]) for i in layers]
            logits, caches = self._decode(prev[:, None], cross_kv, memory["mask"], past, weights, last_layer_weights=True)
            state = {key: kv[j] for i, kv in enumerate(caches) for j, key in enumerate((f"k{i}", f"v{i}"))}
        else:
            prefix = torch.cat([state["prefix"], prev[:, None]], dim=1)  # (B, t + 1)
            logits, _ = self._decode(prefix, cross_kv, memory["mask"], weights=weights, last_layer_weights=True)
            state = {"prefix": prefix}
        attention = weights["encoder_decoder"][-1][:, :, -1].mean(dim=1)  # (B, S)
        return torch.log_softmax(logits[:, -1].float(), dim=-1), state, attention
