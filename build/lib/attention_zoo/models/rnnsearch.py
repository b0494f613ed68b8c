"""RNNsearch: Neural Machine Translation by Jointly Learning to Align and Translate,
Bahdanau, Cho and Bengio 2015 (ICLR), Sec. 3 and Appendix A.

https://arxiv.org/abs/1409.0473

Encoder (A.2.1): a bidirectional GRU; annotation h_j = [→h_j ; ←h_j] (2n).
Decoder (A.2.2), for target position i with previous state s_{i-1} and word y_{i-1}:
    c_i   = Σ_j α_ij h_j,  α = softmax_j(v_aᵀ tanh(W_a s_{i-1} + U_a h_j))   (additive attention)
    s_i   = GRU([E y_{i-1} ; c_i], s_{i-1})
    t̃_i   = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i          (2l)
    t_i   = [max(t̃_{i,2k-1}, t̃_{i,2k})]_{k=1..l}           (maxout)
    p(y_i | ...) = softmax(W_o t_i)
with s_0 = tanh(W_s ←h_1). Paper sizes: n = 1000, m = 620 embeddings, l = 500, n' = 1000
attention units.

Initialization (``init``): ``bahdanau`` (the default) follows Appendix B.1: the recurrent
matrices (U, U_z, U_r of both encoder directions and of the decoder) are random orthogonal
matrices, one per gate; W_a and U_a are drawn from N(0, 0.001²); v_a and every bias are 0;
every other weight matrix (embeddings included) from N(0, 0.01²). ``pytorch`` keeps PyTorch's
defaults (uniform ±1/sqrt(fan)); the rnnsearch_cpu result committed before this default was
trained with it.

Departures: dropout on embeddings and before the output layer is available (0 = paper); GRUs
come from ``torch.nn`` (the paper's gated units are the same GRU of Cho et al. 2014).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attention_zoo.attention.additive import AdditiveAttention
from attention_zoo.choices import check_choice
from attention_zoo.data.text import PAD


@dataclass
class RNNSearchConfig:
    src_vocab: int
    tgt_vocab: int
    embed_dim: int = 620  # m
    hidden_dim: int = 1000  # n, per direction
    attention_dim: int = 1000  # n'
    maxout_dim: int = 500  # l
    dropout: float = 0.0
    init: str = "bahdanau"  # bahdanau (App. B.1) | pytorch (the library defaults)


INITS = ("bahdanau", "pytorch")


class RNNSearch(nn.Module):
    def __init__(self, cfg: RNNSearchConfig):
        super().__init__()
        check_choice("model.init", cfg.init, INITS)
        self.cfg = cfg
        n, m = cfg.hidden_dim, cfg.embed_dim
        self.src_embed = nn.Embedding(cfg.src_vocab, m, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, m, padding_idx=PAD)
        self.encoder = nn.GRU(m, n, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(n, n)  # W_s
        self.attention = AdditiveAttention(query_dim=n, key_dim=2 * n, attention_dim=cfg.attention_dim)
        self.decoder = nn.GRUCell(m + 2 * n, n)
        self.out_state = nn.Linear(n, 2 * cfg.maxout_dim)  # U_o
        self.out_embed = nn.Linear(m, 2 * cfg.maxout_dim, bias=False)  # V_o
        self.out_context = nn.Linear(2 * n, 2 * cfg.maxout_dim, bias=False)  # C_o
        self.out = nn.Linear(cfg.maxout_dim, cfg.tgt_vocab)  # W_o
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.init == "bahdanau":
            self._init_bahdanau()

    def _init_bahdanau(self) -> None:
        """Appendix B.1 (see the module docstring)."""
        recurrent = {id(p) for p in (self.encoder.weight_hh_l0, self.encoder.weight_hh_l0_reverse, self.decoder.weight_hh)}
        attention = {id(self.attention.query_proj.weight), id(self.attention.key_proj.weight)}  # W_a, U_a
        for name, param in self.named_parameters():
            if id(param) in recurrent:  # (3n, n): the r, z and candidate gates' matrices stacked
                for gate in param.data.chunk(3, dim=0):
                    nn.init.orthogonal_(gate)
            elif id(param) in attention:
                nn.init.normal_(param, std=0.001)
            elif name.endswith("bias") or name.startswith("attention.score") or "bias_" in name:
                nn.init.zeros_(param)  # v_a and every bias
            else:
                nn.init.normal_(param, std=0.01)
        for embedding in (self.src_embed, self.tgt_embed):
            embedding.weight.data[PAD].zero_()

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, torch.Tensor]:
        embedded = self.dropout(self.src_embed(src))  # (B, S, m)
        packed = pack_padded_sequence(embedded, src_len.cpu(), batch_first=True, enforce_sorted=False)
        annotations, _ = self.encoder(packed)
        annotations, _ = pad_packed_sequence(annotations, batch_first=True, total_length=src.shape[1])  # (B, S, 2n)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_len[:, None].to(src.device)  # (B, S)
        return {"annotations": annotations, "keys": self.attention.project_keys(annotations), "mask": mask}

    def start(self, memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        first_backward = memory["annotations"][:, 0, self.cfg.hidden_dim :]  # ←h_1 (B, n)
        return {"s": torch.tanh(self.init_state(first_backward))}

    def step(self, prev: torch.Tensor, state: dict[str, torch.Tensor], memory: dict[str, torch.Tensor]):
        """prev (B,) -> log-probabilities (B, V), the new state, and α_i (B, S)."""
        logits, state, weights = self._step_logits(prev, state, memory)
        return torch.log_softmax(logits.float(), dim=-1), state, weights

    def _step_logits(self, prev, state, memory):
        s_prev = state["s"]  # (B, n)
        embedded = self.dropout(self.tgt_embed(prev))  # (B, m)
        context, weights = self.attention(s_prev, memory["annotations"], memory["keys"], memory["mask"])  # (B, 2n), (B, S)
        s = self.decoder(torch.cat([embedded, context], dim=-1), s_prev)  # (B, n)
        t_tilde = self.out_state(s_prev) + self.out_embed(embedded) + self.out_context(context)  # (B, 2l)
        t = t_tilde.view(*t_tilde.shape[:-1], self.cfg.maxout_dim, 2).max(dim=-1).values  # (B, l) maxout
        return self.out(self.dropout(t)), {"s": s}, weights

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, S), (B,), (B, T) -> logits (B, T, V)."""
        memory = self.encode(src, src_len)
        state = self.start(memory)
        logits = []
        for i in range(tgt_in.shape[1]):
            step_logits, state, _ = self._step_logits(tgt_in[:, i], state, memory)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)
