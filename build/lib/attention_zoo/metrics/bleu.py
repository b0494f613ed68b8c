"""Translation metrics through sacreBLEU (Post 2018): the scores the literature reports.

- ``sacrebleu``: detokenized, cased hypotheses against the raw references with sacreBLEU's own
  13a tokenization; comparable across papers, reported with its signature.
- ``tok_bleu``: BLEU on Moses-tokenized, lowercased text (multi-bleu.perl style), what the
  Multi30k literature and the popular tutorials report; not comparable to sacreBLEU.
- ``chrf``: character n-gram F-score (Popović 2015), sacreBLEU's defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF


def moses_tokenized_lowercase(texts: Sequence[str], lang: str) -> list[str]:
    from sacremoses import MosesTokenizer

    tok = MosesTokenizer(lang=lang)
    return [tok.tokenize(t.lower(), escape=False, return_str=True) for t in texts]


def translation_scores(hypotheses: Sequence[str], references: Sequence[str], lang: str) -> dict[str, float | str]:
    """sacreBLEU, tokenized lowercased BLEU and chrF of ``hypotheses`` against one reference each."""
    bleu = BLEU()
    sacre = bleu.corpus_score(list(hypotheses), [list(references)])
    tok = BLEU(tokenize="none", lowercase=True, force=True).corpus_score(
        moses_tokenized_lowercase(hypotheses, lang), [moses_tokenized_lowercase(references, lang)]
    )
    chrf = CHRF().corpus_score(list(hypotheses), [list(references)])
    return {"bleu": sacre.score, "tok_bleu": tok.score, "chrf": chrf.score, "bleu_signature": str(bleu.get_signature())}


def bleu_by_length(
    hypotheses: Sequence[str], references: Sequence[str], source_lengths: Sequence[int], edges: Sequence[int]
) -> list[dict[str, float | int | None]]:
    """sacreBLEU per source-length bucket (Bahdanau et al. 2015, Fig. 2): bucket k holds the
    sentences with edges[k] <= length < edges[k + 1]; the last bucket is open-ended."""
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"bucket edges must be strictly increasing, got {list(edges)}")
    buckets = []
    for k, low in enumerate(edges):
        high = edges[k + 1] if k + 1 < len(edges) else None
        rows = [i for i, n in enumerate(source_lengths) if n >= low and (high is None or n < high)]
        score = BLEU().corpus_score([hypotheses[i] for i in rows], [[references[i] for i in rows]]).score if rows else None
        buckets.append({"min_len": low, "max_len": None if high is None else high - 1, "sentences": len(rows), "bleu": score})
    return buckets
