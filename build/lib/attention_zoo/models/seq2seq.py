"""Sequence to Sequence Learning with Neural Networks, Sutskever, Vinyals and Le 2014.

https://arxiv.org/abs/1409.3215

A deep LSTM reads the source into its final states (h, c); a second deep LSTM, started from
those states, generates the target one token at a time (Sec. 2, Eq. 1). Paper settings
(Sec. 3.4): 4 layers of 1000 cells, 1000-d embeddings, parameters from U(-0.08, 0.08), SGD at
0.7 halved every half epoch after epoch 5, gradient norm clipped at 5, and the source sentence
fed in reverse (Sec. 3.3), which shortens the distance between the first words of source and
target. The same network without reversal is the RNNencdec baseline that Bahdanau et al.
compare RNNsearch against (with GRUs there; the cell type is a config switch).

Departures: dropout between layers is available (``dropout``; 0 = paper), as Zaremba et al.
2014 show it matters on small data such as Multi30k; the vocabularies are Multi30k's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from attention_zoo.choices import check_choice
from attention_zoo.data.text import PAD

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class Seq2SeqConfig:
    src_vocab: int
    tgt_vocab: int
    embed_dim: int = 1000
    hidden_dim: int = 1000
    num_layers: int = 4
    cell: str = "lstm"
    dropout: float = 0.0
    reverse_source: bool = True
    init_range: float = 0.08


def reverse_padded(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``length`` tokens, leaving its padding at the end. (B, S) -> (B, S)."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)[None, :]  # (1, S)
    source = lengths[:, None] - 1 - positions  # (B, S): index to read for each output position
    source = torch.where(source >= 0, source, positions)  # padding stays where it is
    return tokens.gather(1, source)


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        check_choice("cell", cfg.cell, CELLS)
        self.cfg = cfg
        rnn = CELLS[cfg.cell]
        self.src_embed = nn.Embedding(cfg.src_vocab, cfg.embed_dim, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, cfg.embed_dim, padding_idx=PAD)
        self.encoder = rnn(cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True, dropout=cfg.dropout)
        self.decoder = rnn(cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True, dropout=cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden_dim, cfg.tgt_vocab)
        for p in self.parameters():  # Sec. 3.4: uniform in [-0.08, 0.08]
            nn.init.uniform_(p, -cfg.init_range, cfg.init_range)

    # The decoding interface shared by the translation models (see tasks/decoding.py):
    # encode -> memory; start -> state; step(prev, state, memory) -> log-probs, state, attention.
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cfg.reverse_source:
            src = reverse_padded(src, src_len)
        embedded = self.dropout(self.src_embed(src))  # (B, S, E)
        packed = pack_padded_sequence(embedded, src_len.cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.encoder(packed)  # LSTM: (h, c), each (L, B, H); GRU: h
        final = final if isinstance(final, tuple) else (final,)
        return {f"state{i}": s.transpose(0, 1) for i, s in enumerate(final)}  # batch first: (B, L, H)

    def start(self, memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(memory)

    def _run_decoder(self, tokens: torch.Tensor, state: dict[str, torch.Tensor]):
        hidden = tuple(state[k].transpose(0, 1).contiguous() for k in sorted(state))  # (L, B, H) each
        outputs, hidden = self.decoder(self.dropout(self.tgt_embed(tokens)), hidden if len(hidden) > 1 else hidden[0])
        hidden = hidden if isinstance(hidden, tuple) else (hidden,)
        return self.out(self.dropout(outputs)), {f"state{i}": h.transpose(0, 1) for i, h in enumerate(hidden)}

    def step(self, prev: torch.Tensor, state: dict[str, torch.Tensor], memory: dict[str, torch.Tensor]):
        """prev (B,) -> log-probabilities (B, V), the new state, and no attention weights."""
        logits, state = self._run_decoder(prev[:, None], state)  # (B, 1, V)
        return torch.log_softmax(logits[:, 0].float(), dim=-1), state, None

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, S), (B,), (B, T) -> logits (B, T, V)."""
        logits, _ = self._run_decoder(tgt_in, self.start(self.encode(src, src_len)))
        return logits
