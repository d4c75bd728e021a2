"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the time goes.

    .venv/bin/python bench/profile_summary.py PROFILE.txt [--top 15]

Prints the share of samples per function with the most time *in* it (self) and *under*
it (inclusive, inboxpay functions only), frames named ``function (path)`` without line
numbers, so a function's lines add up.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^():]+)(?::\d+)?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m["path"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['func']} ({path})"


def summarise(text: str, top: int) -> list[str]:
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        count = int(m[2])
        frames = [_name(f) for f in m[1].split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if "inboxpay/" in name:
                under[name] += count
    out = [f"{total} samples"]
    out.append("self:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("inclusive (inboxpay):")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in under.most_common(top)]
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    print("\n".join(summarise(args.profile.read_text("utf-8", "replace"), args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
