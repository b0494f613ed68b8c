"""Translation data module: Multi30k sentences -> encoded ids -> token-budget batches.

Encoders are fitted on the training split only. The encoded splits and the fitted encoders
are cached in ``cache_dir`` under a hash of the data config and of the source files' sizes
and times, so a changed config (tokenizer, vocabulary, languages, ...) rebuilds the cache
and an unchanged one loads in a second.

A batch is a dict: ``src`` (B, S) ids without specials, ``src_len`` (B,), ``tgt`` (B, T)
``<bos> ids <eos>`` padded with <pad>, ``index`` (B,) positions in the split (to restore the
corpus order of decoded output).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from attention_zoo.choices import check_choice
from attention_zoo.data import multi30k
from attention_zoo.data.text import (
    TOKENIZERS,
    SubwordEncoder,
    WordEncoder,
    config_key,
    encoder_from_state,
    pad_batch,
    padding_share,
    shuffled,
    token_budget_batches,
)
from attention_zoo.engine.cache import load_or_build
from attention_zoo.engine.distributed import SINGLE_PROCESS, Distributed

log = logging.getLogger(__name__)


@dataclass
class TranslationConfig:
    root: str
    cache_dir: str
    name: str = "multi30k"
    src: str = "de"
    tgt: str = "en"
    download: bool = True
    tokenizer: str = "moses"  # moses | bpe | unigram
    lowercase: bool = False
    min_freq: int = 2  # moses: keep training words seen at least this often
    vocab_size: int = 8000  # bpe/unigram
    joint_vocab: bool = False  # bpe/unigram: one model over both languages (shared embeddings)
    max_tokens: int = 4096  # per training batch, padded (rows x longest side)
    max_sentences: int | None = None  # per training batch as well (Sutskever et al.: 128 sentences)
    eval_max_tokens: int = 8192
    max_train_len: int = 100  # drop training pairs with a longer side (in tokens)
    limit_train: int | None = None  # first N training pairs (smoke runs)
    test_set: str = "test2016"  # test2016 | test2017 | test2017_mscoco | test2018 (or the official file names)
    source: str = "files"  # files (the official raw files) | hub (bentrevett/multi30k through HF datasets, online)


SOURCES = ("files", "hub")


class TranslationData:
    shard: Distributed = SINGLE_PROCESS  # a data-parallel run sets this process's place: train batches are its shards

    def __init__(self, cfg: TranslationConfig, seed: int):
        check_choice("data.tokenizer", cfg.tokenizer, TOKENIZERS)
        self.cfg, self.seed = cfg, seed
        self.test_split = multi30k.split_name(cfg.test_set)
        check_choice("data.test_set", self.test_split, multi30k.TEST_SETS)
        self.splits = ("train", "val", self.test_split)
        check_choice("data.source", cfg.source, SOURCES)
        if cfg.source == "hub":
            raw = {split: multi30k.load_hub_pairs(split, cfg.src, cfg.tgt) for split in self.splits}
        else:
            raw = {split: multi30k.load_pairs(cfg.root, split, cfg.src, cfg.tgt, cfg.download) for split in self.splits}
        if cfg.limit_train is not None:
            raw["train"] = tuple(side[: cfg.limit_train] for side in raw["train"])
        self.references = {split: targets for split, (_, targets) in raw.items()}
        self.sources = {split: sources for split, (sources, _) in raw.items()}
        cache = Path(cfg.cache_dir).expanduser() / f"multi30k-{self._cache_key()}.pt"
        stored, from_cache = load_or_build(cache, lambda: self._encode(raw))
        log.info(
            "%s Multi30k %s-%s (%s): %s",
            "Loaded encoded" if from_cache else "Encoded and cached",
            cfg.src,
            cfg.tgt,
            cfg.tokenizer,
            cache,
        )
        self.src_encoder = encoder_from_state(stored["encoders"]["src"])
        self.tgt_encoder = encoder_from_state(stored["encoders"]["tgt"])
        self.ids = stored["splits"]
        train = self.ids["train"]
        keep = [i for i, (s, t) in enumerate(zip(train["src"], train["tgt"])) if max(len(s), len(t)) <= cfg.max_train_len]
        self.train_batch_rows = [  # the fixed partition into batches; each epoch shuffles their order
            [keep[j] for j in batch]
            for batch in token_budget_batches(
                [len(train["src"][i]) for i in keep],
                [len(train["tgt"][i]) + 2 for i in keep],
                cfg.max_tokens,
                cfg.max_sentences,
            )
        ]
        self.num_train_batches = len(self.train_batch_rows)
        self.train_padding_share = padding_share(
            self.train_batch_rows, [len(s) for s in train["src"]], [len(t) + 2 for t in train["tgt"]]
        )
        log.info(
            "Multi30k %s->%s: %d train pairs (%d over max_train_len dropped) in %d batches of <= %d tokens "
            "(padding %.1f%%); vocab %d / %d",
            cfg.src,
            cfg.tgt,
            len(keep),
            len(train["src"]) - len(keep),
            self.num_train_batches,
            cfg.max_tokens,
            100 * self.train_padding_share,
            self.src_encoder.vocab_size,
            self.tgt_encoder.vocab_size,
        )

    def _cache_key(self) -> str:
        folder = Path(self.cfg.root).expanduser() / "multi30k"
        stamps = []
        for split in self.splits if self.cfg.source == "files" else ():  # the Hub copy is named by the config
            for lang in (self.cfg.src, self.cfg.tgt):
                path = folder / multi30k.file_name(split, lang)
                stamps.append((path.name, path.stat().st_size, path.stat().st_mtime_ns))
        fields = {
            k: v
            for k, v in asdict(self.cfg).items()
            if k not in ("root", "cache_dir", "download", "max_tokens", "max_sentences", "eval_max_tokens", "max_train_len")
        }
        return hashlib.sha1(config_key({"config": fields, "files": stamps}).encode()).hexdigest()[:16]

    def _encode(self, raw: dict) -> dict:
        cfg = self.cfg
        train_src, train_tgt = raw["train"]
        if cfg.tokenizer == "moses":
            src_enc = WordEncoder.train(cfg.src, train_src, cfg.lowercase, cfg.min_freq)
            tgt_enc = WordEncoder.train(cfg.tgt, train_tgt, cfg.lowercase, cfg.min_freq)
        elif cfg.joint_vocab:
            src_enc = tgt_enc = SubwordEncoder.train(cfg.tokenizer, [*train_src, *train_tgt], cfg.vocab_size, cfg.lowercase)
        else:
            src_enc = SubwordEncoder.train(cfg.tokenizer, train_src, cfg.vocab_size, cfg.lowercase)
            tgt_enc = SubwordEncoder.train(cfg.tokenizer, train_tgt, cfg.vocab_size, cfg.lowercase)
        splits = {
            split: {"src": [src_enc.encode(s) for s in sources], "tgt": [tgt_enc.encode(t) for t in targets]}
            for split, (sources, targets) in raw.items()
        }
        return {"encoders": {"src": src_enc.state(), "tgt": tgt_enc.state()}, "splits": splits}

    def model_inputs(self) -> dict:
        """The source and target tokenizers (model_inputs.json): a trained model translates without the corpus."""
        return {"task": "translation", "src": self.src_encoder.state(), "tgt": self.tgt_encoder.state()}

    def batch(self, split: str, rows: list[int]) -> dict[str, torch.Tensor]:
        """The given sentence pairs of a split as one padded batch: src (B, S), src_len (B,), tgt (B, T), index (B,)."""
        data = self.ids[split]
        sources = [data["src"][i] for i in rows]
        return {
            "src": pad_batch(sources, add_bos_eos=False),
            "src_len": torch.tensor([len(s) for s in sources]),
            "tgt": pad_batch([data["tgt"][i] for i in rows], add_bos_eos=True),
            "index": torch.tensor(rows),
        }

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        order = shuffled(self.train_batch_rows, self.seed, epoch)
        for rows in order[start:]:
            yield self.batch("train", self.shard.rows(rows))  # each process pads its own shard

    def eval_batches(self, split: str) -> list[dict[str, torch.Tensor]]:
        data = self.ids[split]
        batches = token_budget_batches([len(s) for s in data["src"]], [len(t) + 2 for t in data["tgt"]], self.cfg.eval_max_tokens)
        return [self.batch(split, rows) for rows in batches]

    def val_batches(self):
        return self.eval_batches("val")

    def test_batches(self):
        return self.eval_batches(self.test_split)
