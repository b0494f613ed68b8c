"""Download a dataset into a data root from its official source (needs internet).

    python scripts/download_data.py cifar10 --root data
    python scripts/download_data.py cifar100 --root data
    python scripts/download_data.py multi30k --root data
    python scripts/download_data.py multi30k --root data --test-sets test2017 test2017_mscoco test2018 --langs de en

CIFAR comes through torchvision, which verifies the archive's md5 sum; Multi30k's raw task-1
files come from the official repository and are checked against their sha256.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATASETS = ("cifar10", "cifar100", "multi30k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--root", type=Path, default=Path("data"))
    parser.add_argument(
        "--test-sets", nargs="+", default=[], help="multi30k: also these test sets (test2017 test2017_mscoco test2018)"
    )
    parser.add_argument("--langs", nargs="+", default=["de", "en"], help="multi30k: languages of the --test-sets")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    if args.dataset == "multi30k":
        from attention_zoo.data import multi30k

        names = [*multi30k.SHA256, *(multi30k.file_name(t, lang) for t in args.test_sets for lang in args.langs)]
        for name in names:
            multi30k.ensure_file(args.root / "multi30k", name, download=True)
    else:
        from torchvision import datasets

        cls = datasets.CIFAR10 if args.dataset == "cifar10" else datasets.CIFAR100
        for train in (True, False):
            cls(str(args.root), train=train, download=True)
    print(f"{args.dataset} is ready under {args.root.resolve()}")


if __name__ == "__main__":
    main()
