"""Example job code for examples/workdir.yaml: print the most common words of a file."""

import argparse
import collections
import pathlib
import re


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=pathlib.Path)
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    words = re.findall(r"[a-z']+", args.path.read_text(encoding="utf-8").lower())
    for word, count in collections.Counter(words).most_common(args.limit):
        print(f"{count:3d} {word}")
    print(f"{len(words)} words in {args.path}")


if __name__ == "__main__":
    main()
