"""A tiny Multi30k-format corpus (4 de-en pairs) written by the tests in the official file layout."""

import gzip

from attention_zoo.data import multi30k

DE = ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball.", "Eine Frau liest ein Buch.", "Ein Kind isst Eis."]
EN = ["A dog runs in the park.", "Two men play soccer.", "A woman reads a book.", "A child eats ice cream."]


def write_corpus(root):
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test2016"):
        for lang, lines in (("de", DE), ("en", EN)):
            with gzip.open(folder / multi30k.file_name(split, lang), "wt", encoding="utf-8") as fh:
                fh.write("\n".join(lines * (3 if split == "train" else 1)) + "\n")
    return folder
