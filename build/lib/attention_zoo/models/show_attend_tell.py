"""Show, Attend and Tell of Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio 2015.

https://arxiv.org/abs/1502.03044

Annotation vectors a_i (L of them, D dims) from a CNN grid (models/image_encoder.py). At each
step t an LSTM decoder attends over them with the MLP attention f_att (attention/additive.py,
shared with RNNsearch):

    e_ti = f_att(a_i, h_{t-1}),  α_ti = softmax_i(e_ti)                       (Eq. 4-5)
    ẑ_t  = β_t Σ_i α_ti a_i,  β_t = σ(f_β(h_{t-1}))                          (Eq. 6, gate of Sec. 4.2.1)
    i, f, o, g, c_t, h_t = LSTM([E y_{t-1}; ẑ_t], h_{t-1}, c_{t-1})          (Eq. 1-3)
    c_0 = f_init,c(mean_i a_i),  h_0 = f_init,h(mean_i a_i)                   (Sec. 3.1.2)
    p(y_t | a, y_<t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t))               (Eq. 7, deep output)

Soft attention (Sec. 4.2) uses ẑ_t above. Hard attention (Sec. 4.1) samples a location
s_t ~ Multinoulli(α_t) and uses ẑ_t = β_t a_{s_t}; for each caption, with probability 0.5 the
expected context (the soft one) is used instead (end of Sec. 4.1). Its REINFORCE terms, the
moving-average baseline and the entropy bonus are in ``tasks/captioning.py``. When it does not
sample (validation, test, decoding), hard attention uses the expected context Σ_i α_ti a_i, as
the authors' caption generator does when not sampling (``hard_decode=expected``, the default);
``hard_decode=argmax`` takes the most probable location a_{argmax α_t} instead, the rule the
scenes results committed before this default were decoded with. f_init and f_β are single linear
layers (tanh for f_init, sigmoid for β):
the paper does not give their depth.

``attention=none`` is the no-attention baseline the paper compares against (Show and Tell,
Vinyals et al. 2015, as Xu et al.'s Table 1 lists it): the mean annotation initializes h_0, c_0
as above, and the LSTM then sees only the previous word, E y_{t-1}, with no context vector:
ẑ_t and its terms (β_t, L_z ẑ_t in Eq. 7, the penalty of Eq. 14) are gone. Departure from
Vinyals et al.: they feed the image once as the LSTM's first input, not as its initial state;
the initial state keeps everything else equal to the attention models here.

``init_from_annotations=False`` (an ablation, not in the paper) starts from h_0 = c_0 = 0: the
decoder then learns what is in the image only through the attention contexts ẑ_t, not from the
mean annotation, which summarizes every object before the first word.

Departures: dropout (``dropout``) on the deep-output sum before L_o, a standard regularizer the
paper mentions without placing; no tanh inside Eq. 7 (the authors' code adds one).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from attention_zoo.attention.additive import AdditiveAttention
from attention_zoo.choices import check_choice
from attention_zoo.data.text import PAD
from attention_zoo.models.image_encoder import ImageEncoder

ATTENTIONS = ("soft", "hard", "none")
HARD_DECODES = ("expected", "argmax")


@dataclass
class ShowAttendTellConfig:
    vocab_size: int
    encoder: str = "vgg19"
    encoder_weights: str | None = "imagenet"
    fine_tune_encoder: bool = False
    embed_dim: int = 512
    hidden_dim: int = 1800
    attention_dim: int = 512
    attention: str = "soft"  # soft | hard | none (the Show and Tell baseline)
    gate: bool = True  # β of Sec. 4.2.1
    dropout: float = 0.5
    expected_context_prob: float = 0.5  # hard attention: share of captions trained with the soft context
    hard_decode: str = "expected"  # hard attention when not sampling: expected context | argmax location
    init_from_annotations: bool = True  # h_0, c_0 from the mean annotation (Sec. 3.1.2); False: zeros


class ShowAttendTell(nn.Module):
    def __init__(self, cfg: ShowAttendTellConfig):
        super().__init__()
        check_choice("model.attention", cfg.attention, ATTENTIONS)
        check_choice("model.hard_decode", cfg.hard_decode, HARD_DECODES)
        self.cfg = cfg
        self.encoder = ImageEncoder(cfg.encoder, cfg.encoder_weights, cfg.fine_tune_encoder)
        d, n, m = self.encoder.dim, cfg.hidden_dim, cfg.embed_dim
        self.embedding = nn.Embedding(cfg.vocab_size, m, padding_idx=PAD)  # E
        self.init_h, self.init_c = (
            (nn.Linear(d, n), nn.Linear(d, n)) if cfg.init_from_annotations else (None, None)
        )  # f_init,h, f_init,c
        attends = cfg.attention != "none"
        self.attention = (
            AdditiveAttention(query_dim=n, key_dim=d, attention_dim=cfg.attention_dim, bias=True) if attends else None
        )  # f_att
        self.gate = nn.Linear(n, 1) if cfg.gate and attends else None  # f_β
        self.lstm = nn.LSTMCell(m + d if attends else m, n)
        self.out_h, self.out_z = nn.Linear(n, m), nn.Linear(d, m) if attends else None  # L_h, L_z
        self.out = nn.Linear(m, cfg.vocab_size)  # L_o
        self.dropout = nn.Dropout(cfg.dropout)
        self.register_buffer("reward_baseline", torch.zeros(()))  # b of Sec. 4.1, a moving average

    # --- the step interface of tasks/decoding.py: encode -> start -> step ---------------------
    def encode(self, src: torch.Tensor, src_len: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """src: images (B, 3, H, W) or cached annotation vectors (B, L, D)."""
        annotations = self.encoder(src) if src.dim() == 4 else src  # (B, L, D)
        if self.attention is None:
            return {"annotations": annotations}
        return {"annotations": annotations, "keys": self.attention.project_keys(annotations)}

    def start(self, memory: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mean = memory["annotations"].mean(dim=1)  # (B, D)
        if self.init_h is None:
            zeros = mean.new_zeros(len(mean), self.cfg.hidden_dim)  # (B, n)
            return {"h": zeros, "c": zeros}
        return {"h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean))}

    def step(self, prev: torch.Tensor, state: dict, memory: dict) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """One decoding step: log p(y_t | ...) (B, V), the new state, α_t (B, L) (None without attention)."""
        context, alpha, _ = self._attend(state["h"], memory, sample=False)
        logits, state = self._emit(prev, context, state)
        return F.log_softmax(logits.float(), dim=-1), state, alpha if self.attention is not None else None

    # --- training -----------------------------------------------------------------------------
    def forward(
        self,
        src: torch.Tensor,
        captions_in: torch.Tensor,
        caption_image: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Teacher forcing over captions_in (B, T) (<bos> y_1 .. y_{T-1}). ``caption_image`` (B,):
        the row of ``src`` each caption describes, when src holds each image once (group_by=image).
        ``lengths`` (B,): each caption's number of real target steps; the steps past a caption's end
        are then skipped (their outputs are 0), which saves the padding's share of a padded batch.
        Returns logits (B, T, V), alphas (B, T, L) (L = 0 without attention) and, for hard attention,
        the log-probability of the sampled locations (B, T), the entropies of α_t (B, T), and which
        captions used the expected context (B,)."""
        memory = self.encode(src)
        if caption_image is not None:
            memory = {key: value[caption_image] for key, value in memory.items()}  # one row per caption
        batch, steps = captions_in.shape
        hard = self.cfg.attention == "hard" and self.training
        expected = torch.rand(batch, device=src.device) < self.cfg.expected_context_prob if hard else None
        running, order = [batch] * steps, None  # captions still running at each step
        if lengths is not None:
            order = lengths.argsort(descending=True, stable=True)  # longest first: the running ones are a prefix
            memory = {key: value[order] for key, value in memory.items()}
            captions_in = captions_in[order]
            running = [int((lengths > t).sum()) for t in range(steps)]
        sampled_expected = expected[order] if hard and order is not None else expected
        state = self.start(memory)
        logits, alphas, log_p_locations, entropies = [], [], [], []
        for t, n in enumerate(running):
            if n < len(state["h"]):  # captions that ended drop out
                state = {key: value[:n] for key, value in state.items()}
                memory = {key: value[:n] for key, value in memory.items()}
                sampled_expected = sampled_expected[:n] if hard else None
            context, alpha, log_p = self._attend(state["h"], memory, sample=hard, expected=sampled_expected)
            step_logits, state = self._emit(captions_in[:n, t], context, state)
            logits.append(F.pad(step_logits, (0, 0, 0, batch - n))), alphas.append(F.pad(alpha, (0, 0, 0, batch - n)))
            if hard:
                log_p_locations.append(F.pad(log_p, (0, batch - n)))
                entropies.append(F.pad(-(alpha * alpha.clamp_min(1e-12).log()).sum(-1), (0, batch - n)))
        out = {"logits": torch.stack(logits, 1), "alphas": torch.stack(alphas, 1)}
        if hard:
            out.update(log_p_locations=torch.stack(log_p_locations, 1), entropies=torch.stack(entropies, 1))
        if order is not None:
            out = {key: value[order.argsort()] for key, value in out.items()}  # back to the batch's order
        if hard:
            out["expected"] = expected
        return out

    def _attend(self, h: torch.Tensor, memory: dict, sample: bool, expected: torch.Tensor | None = None):
        """ẑ_t (B, D), α_t (B, L), and log α_{t, s_t} of the sampled location (B,) when sampling."""
        annotations = memory["annotations"]
        if self.attention is None:
            return None, annotations.new_zeros(len(h), 0), None  # no context; α over no locations (B, 0)
        context, alpha = self.attention(h, annotations, memory["keys"])  # (B, D), (B, L)
        log_p = None
        if self.cfg.attention == "hard" and (sample or self.cfg.hard_decode == "argmax"):
            location = torch.multinomial(alpha.detach(), 1) if sample else alpha.argmax(-1, keepdim=True)  # (B, 1)
            chosen = annotations.gather(1, location[:, :, None].expand(-1, 1, annotations.shape[-1])).squeeze(1)  # a_{s_t}
            log_p = alpha.gather(1, location).squeeze(1).clamp_min(1e-12).log()  # (B,)
            context = torch.where(expected[:, None], context, chosen) if expected is not None else chosen
        if self.gate is not None:
            context = torch.sigmoid(self.gate(h)) * context  # β_t ẑ_t
        return context, alpha, log_p

    def _emit(self, prev: torch.Tensor, context: torch.Tensor | None, state: dict) -> tuple[torch.Tensor, dict]:
        embedded = self.embedding(prev)  # (B, m) E y_{t-1}
        if context is None:  # attention=none: the word alone
            h, c = self.lstm(embedded, (state["h"], state["c"]))
            deep = embedded + self.out_h(h)
        else:
            h, c = self.lstm(torch.cat([embedded, context], dim=-1), (state["h"], state["c"]))
            deep = embedded + self.out_h(h) + self.out_z(context)  # Eq. 7
        return self.out(self.dropout(deep)), {"h": h, "c": c}
