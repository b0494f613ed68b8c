"""Text for translation: tokenization, vocabularies, and token-budget batching.

Two encoders share one interface (``encode(text) -> ids``, ``decode(ids) -> text``):

- ``WordEncoder``: Moses tokenization (sacremoses) with an optional lowercasing switch and a
  word vocabulary built on the training split with a minimum frequency; out-of-vocabulary
  words map to <unk>. ``decode`` detokenizes with Moses, for scoring against raw references.
- ``SubwordEncoder``: a BPE or unigram model (HF ``tokenizers``) trained on the training split
  only, over one or both languages (a joint vocabulary, as Vaswani et al. Sec. 5.1 share);
  Metaspace pre-tokenization makes ``decode`` an exact inverse up to whitespace.

Special ids are the same in both: <pad>=0, <unk>=1, <bos>=2, <eos>=3.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import torch

from attention_zoo.engine.seeding import derived_generator

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(4)
TOKENIZERS = ("moses", "bpe", "unigram")


class WordEncoder:
    """Moses words + a vocabulary of the training words seen at least ``min_freq`` times."""

    def __init__(self, lang: str, itos: Sequence[str], lowercase: bool):
        from sacremoses import MosesDetokenizer, MosesTokenizer

        self.lang, self.itos, self.lowercase = lang, list(itos), lowercase
        self.stoi = {word: i for i, word in enumerate(self.itos)}
        self._tok, self._detok = MosesTokenizer(lang=lang), MosesDetokenizer(lang=lang)

    @classmethod
    def train(cls, lang: str, texts: Iterable[str], lowercase: bool, min_freq: int) -> WordEncoder:
        probe = cls(lang, SPECIALS, lowercase)
        counts = Counter(word for text in texts for word in probe.tokenize(text))
        words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(lang, [*SPECIALS, *words], lowercase)

    def tokenize(self, text: str) -> list[str]:
        text = text.lower() if self.lowercase else text
        return self._tok.tokenize(text, escape=False)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(word, UNK) for word in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._detok.detokenize([self.itos[i] for i in _strip_specials(ids)])

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary entry of each id, specials included (axis labels of attention figures)."""
        return [self.itos[int(i)] for i in ids]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def state(self) -> dict:
        return {"kind": "moses", "lang": self.lang, "itos": self.itos, "lowercase": self.lowercase}


class SubwordEncoder:
    """A subword model (BPE or unigram) from HF ``tokenizers``, trained on training text only."""

    def __init__(self, tokenizer_json: str, lowercase: bool):
        from tokenizers import Tokenizer

        self.tokenizer_json, self.lowercase = tokenizer_json, lowercase
        self._tok = Tokenizer.from_str(tokenizer_json)

    @classmethod
    def train(cls, kind: str, texts: Iterable[str], vocab_size: int, lowercase: bool) -> SubwordEncoder:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        if kind == "bpe":
            tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False)
        else:
            tokenizer = Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(
                vocab_size=vocab_size, special_tokens=list(SPECIALS), unk_token="<unk>", show_progress=False
            )
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer.to_str(), lowercase)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(list(_strip_specials(ids)))

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """The subword piece of each id, specials included (axis labels of attention figures)."""
        return [self._tok.id_to_token(int(i)) for i in ids]

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def state(self) -> dict:
        return {"kind": "subword", "tokenizer_json": self.tokenizer_json, "lowercase": self.lowercase}


def encoder_from_state(state: dict) -> WordEncoder | SubwordEncoder:
    if state["kind"] == "moses":
        return WordEncoder(state["lang"], state["itos"], state["lowercase"])
    return SubwordEncoder(state["tokenizer_json"], state["lowercase"])


def _strip_specials(ids: Iterable[int]) -> Iterator[int]:
    """Ids up to the first <eos>, without <pad>/<bos>."""
    for i in ids:
        i = int(i)
        if i == EOS:
            return
        if i not in (PAD, BOS):
            yield i


def token_budget_batches(
    src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int, max_sentences: int | None = None
) -> list[list[int]]:
    """Index batches whose padded size (rows x longest side) stays within ``max_tokens``, and
    whose rows stay within ``max_sentences`` when given.

    Sentences are sorted by (source, target) length, then cut into consecutive batches, so a
    batch holds near-equal lengths and little padding (fairseq's batching). The partition is
    fixed; training shuffles the order of the batches each epoch (``shuffled``), which keeps
    the number of steps per epoch constant for the learning-rate schedule.
    """
    order = sorted(range(len(src_lens)), key=lambda i: (src_lens[i], tgt_lens[i], i))
    batches, current, longest = [], [], 0
    for i in order:
        length = max(src_lens[i], tgt_lens[i])
        if length > max_tokens:
            raise ValueError(f"Sentence {i} has {length} tokens, more than max_tokens={max_tokens}; raise the budget.")
        full = max_sentences is not None and len(current) >= max_sentences
        if current and (full or max(longest, length) * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def shuffled(batches: Sequence[list[int]], seed: int, epoch: int) -> list[list[int]]:
    """The batches in an order that is a pure function of (seed, epoch)."""
    perm = torch.randperm(len(batches), generator=derived_generator(seed, epoch)).tolist()
    return [batches[p] for p in perm]


def padding_share(batches: Sequence[Sequence[int]], src_lens: Sequence[int], tgt_lens: Sequence[int]) -> float:
    """Fraction of the padded source+target tensors' cells that hold <pad>."""
    cells = real = 0
    for batch in batches:
        for lens in (src_lens, tgt_lens):
            lengths = [lens[i] for i in batch]
            cells += len(lengths) * max(lengths)
            real += sum(lengths)
    return 1 - real / cells


def pad_batch(sequences: Sequence[Sequence[int]], add_bos_eos: bool) -> torch.Tensor:
    """(B, L) int64 with <pad>=0; optionally wraps each sequence as <bos> ... <eos>."""
    rows = [[BOS, *s, EOS] if add_bos_eos else list(s) for s in sequences]
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)] = torch.tensor(row, dtype=torch.int64)
    return out


def config_key(cfg: dict) -> str:
    """A stable string for hashing a data config (cache keys)."""
    return json.dumps(cfg, sort_keys=True, default=str)
