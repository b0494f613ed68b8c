"""COCO caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr, and SPICE.

The captions are tokenized by pycocoevalcap's PTBTokenizer (Stanford CoreNLP), as the COCO
evaluation server does. PTBTokenizer, METEOR and SPICE run Java (OpenJDK >= 8 on the PATH;
README and environment.yml). SPICE also needs the Stanford CoreNLP 3.6.0 jars, which
pycocoevalcap downloads on first use; when they are absent (offline), SPICE is skipped with
a message saying how to install them, and the other metrics are reported.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)
SPICE_HELP = (
    "SPICE skipped: its Stanford CoreNLP models are not installed. Online, install them once with "
    "`python -c 'from pycocoevalcap.spice.get_stanford_models import get_stanford_models as g; g()'`."
)


def spice_available() -> bool:
    from pycocoevalcap.spice import spice

    lib = Path(spice.__file__).parent / "lib"
    return (lib / "stanford-corenlp-3.6.0.jar").is_file() and (lib / "stanford-corenlp-3.6.0-models.jar").is_file()


def caption_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], spice: bool | None = None, per_image: list | None = None
) -> dict[str, float]:
    """Corpus scores of one hypothesis per image against that image's references.

    Returns bleu1..bleu4, meteor, rouge_l, cider (and spice), each in [0, 1] as pycocoevalcap
    gives them (CIDEr can exceed 1). ``spice=None`` computes SPICE when its models are installed.
    ``per_image``: a list that receives each image's CIDEr, in the order of ``hypotheses``.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"Need one hypothesis per image: {len(hypotheses)} hypotheses, {len(references)} reference sets.")
    if shutil.which("java") is None:
        raise RuntimeError("The COCO caption metrics need Java on the PATH (e.g. `apt install default-jre`, or conda's openjdk).")
    tokenizer = PTBTokenizer()
    res = tokenizer.tokenize({i: [{"caption": h}] for i, h in enumerate(hypotheses)})
    gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["meteor"] = float(Meteor().compute_score(gts, res)[0])
    scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    cider, cider_each = Cider().compute_score(gts, res)
    scores["cider"] = float(cider)
    if per_image is not None:
        per_image.extend(float(c) for c in cider_each)
    if spice is None:
        spice = spice_available()
        if not spice:
            log.warning(SPICE_HELP)
    if spice:
        from pycocoevalcap.spice.spice import Spice

        scores["spice"] = float(Spice().compute_score(gts, res)[0])
    return scores
