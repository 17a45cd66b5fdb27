"""Summarise a py-spy raw (collapsed stacks) profile: self time and hub frames' inclusive time.

    python benchmarks/collapse.py FILE [N]
"""

from __future__ import annotations

import sys
from collections import Counter


def main() -> None:
    path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    print(f"{total} samples")
    for frame, n in own.most_common(top):
        print(f"{n / total * 100:5.1f}% self  {frame[:140]}")
    for frame, n in incl.most_common(400):
        if any(k in frame for k in ("hub/", "connectors/", "starlette/", "uvicorn/")):
            print(f"{n / total * 100:5.1f}% incl  {frame[:140]}")


if __name__ == "__main__":
    main()
