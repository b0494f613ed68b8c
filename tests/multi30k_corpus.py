"""A tiny Multi30k-format corpus written by the tests in the official file layout.

The three splits differ, so that scoring one split against another's references, or fitting
the vocabulary on anything but train, shows: train holds 6 pairs (3 times over); val holds 2 of
them and a pair with words train never has (VAL_ONLY); test holds the 4 pairs DE/EN in another
order than train's (TEST_DE/TEST_EN), so a model that memorizes train can translate it.
"""

import gzip

from attention_zoo.data import multi30k

DE = ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball.", "Eine Frau liest ein Buch.", "Ein Kind isst Eis."]
EN = ["A dog runs in the park.", "Two men play soccer.", "A woman reads a book.", "A child eats ice cream."]
TRAIN_DE = [*DE, "Ein Mann liest.", "Zwei Hunde spielen."]
TRAIN_EN = [*EN, "A man reads.", "Two dogs play."]
VAL_ONLY = ("Ein Pferd springt.", "A horse jumps.")  # Pferd, springt, horse, jumps: in no training sentence
VAL_DE, VAL_EN = [TRAIN_DE[5], VAL_ONLY[0], TRAIN_DE[4]], [TRAIN_EN[5], VAL_ONLY[1], TRAIN_EN[4]]
TEST_ORDER = [2, 0, 3, 1]
TEST_DE, TEST_EN = [DE[i] for i in TEST_ORDER], [EN[i] for i in TEST_ORDER]
SPLITS = {"train": (TRAIN_DE * 3, TRAIN_EN * 3), "val": (VAL_DE, VAL_EN), "test2016": (TEST_DE, TEST_EN)}


def write_corpus(root):
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    for split, sides in SPLITS.items():
        for lang, lines in zip(("de", "en"), sides):
            with gzip.open(folder / multi30k.file_name(split, lang), "wt", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
    return folder


# A Transformer small enough to memorize the corpus in seconds, without dropout (runs repeat exactly).
TINY_TRANSFORMER = (
    "data.vocab_size=120",
    "model.d_model=32",
    "model.heads=2",
    "model.d_ff=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.dropout=0",
    "model.attention_dropout=0",
)
# Every batch of every split, every epoch (the smoke trainer's limits lifted), Adam at a constant rate.
WHOLE_CORPUS = (
    "trainer=smoke",
    "trainer.limit_train_batches=null",
    "trainer.max_steps=null",
    "trainer.limit_eval_batches=null",
    "data.max_tokens=60",
    "data.download=false",
    "optim=adam",
    "optim.lr=0.003",
    "schedule=constant",
    "schedule.warmup_steps=0",
    "task.figure_sentences=[]",
)
