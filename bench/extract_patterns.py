#!/usr/bin/env python3
"""Writes the patterns of an intent directory, one per line, in rank order, for
bench_match:  extract_patterns.py INTENTS_DIR OUT_FILE

Rank order is loket's (docs/intents.md): higher priority first, then file name,
then position in the file; within an intent, its languages in the order written.
Intents with a `when` context are left out: they only compete in their context.
Needs PyYAML (Debian: python3-yaml)."""
import os
import sys

import yaml


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract_patterns.py INTENTS_DIR OUT_FILE")
    d = sys.argv[1]
    intents = []
    for name in sorted(os.listdir(d)):
        if not (name.endswith(".yaml") or name.endswith(".yml")):
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            items = yaml.safe_load(f) or []
        for item in items:
            if isinstance(item, dict) and "intent" in item and "when" not in item:
                intents.append(item)
    order = sorted(range(len(intents)), key=lambda i: (-int(intents[i].get("priority", 0)), i))
    n = 0
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        for i in order:
            for pats in (intents[i].get("match") or {}).values():
                for p in pats or []:
                    out.write(p + "\n")
                    n += 1
    print("extract_patterns: %d intents, %d patterns from %s" % (len(intents), n, d))


if __name__ == "__main__":
    main()
