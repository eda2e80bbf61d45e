"""Summarise a py-spy profile (`py-spy record --format raw`): the top functions.

py-spy samples without slowing the code it watches (pyinstrument's call
hooks inflate call-heavy code such as `copy.deepcopy`), so the monitor's
profiles in RESULTS.md come from it:

    .venv/bin/python -m bench.redis_round --quick --profile /tmp/p.txt
    .venv/bin/python -m bench.spy_top /tmp/p.txt --within ProbeRunner._limited

Without `--idle`, py-spy records only samples where Python code runs, so the
shares below are shares of CPU time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    """`func (file)` without the line number."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['func']} ({match['file']})"


def summarise(
    path: Path, *, within: str | None, top: int
) -> tuple[int, int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Total samples, samples kept, top self and top inclusive functions."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = kept = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        total += count
        frames = [_frame_name(f) for f in match["stack"].split(";")]
        if within is not None and not any(within in f for f in frames):
            continue
        kept += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, kept, own.most_common(top), inclusive.most_common(top)


def main() -> None:
    """Print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument(
        "--within", help="keep only stacks with a frame containing this text"
    )
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, kept, own, inclusive = summarise(
        args.profile, within=args.within, top=args.top
    )
    scope = f" within {args.within!r}" if args.within else ""
    print(f"{kept} of {total} samples{scope}")
    print("\nself (where the CPU was):")
    for name, count in own:
        print(f"  {100 * count / kept:5.1f}%  {name}")
    print("\ninclusive (with callees):")
    for name, count in inclusive:
        print(f"  {100 * count / kept:5.1f}%  {name}")


if __name__ == "__main__":
    main()
