"""Download a dataset into a data root from its official source (needs internet).

    python scripts/download_data.py cifar10 --root data
    python scripts/download_data.py cifar100 --root data

CIFAR comes through torchvision, which verifies the archive's md5 sum.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATASETS = ("cifar10", "cifar100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--root", type=Path, default=Path("data"))
    args = parser.parse_args()
    from torchvision import datasets

    cls = datasets.CIFAR10 if args.dataset == "cifar10" else datasets.CIFAR100
    args.root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        cls(str(args.root), train=train, download=True)
    print(f"{args.dataset} is ready under {args.root.resolve()}")


if __name__ == "__main__":
    main()
