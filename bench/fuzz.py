"""The fuzz campaign at full size, on a local system of its own (free ports, sweep on demand only):

    .venv/bin/python bench/fuzz.py --examples 1000 [--seed 0]

Every operation of the served OpenAPI document gets `examples` positive and `examples` negative schemathesis cases
(and `examples` raw bodies where it takes one); each Event Grid webhook `examples` deliveries of generated and mutated
events (tests/support/fuzz_campaign.py says what is checked). Progress goes to stderr; the last line printed is the
JSON summary: per route, requests, statuses seen, server errors, state changes and the other violations. Exits 1
when anything is not clean.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import fresh_system  # noqa: E402
from tests.support.fuzz_campaign import campaign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="cases per operation and generation mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["api", "webhooks"], help="one half (each on a system of its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmk-fuzz-") as tmp, fresh_system(Path(tmp)) as system:
        summary = campaign(
            system,
            examples=args.examples,
            seed=args.seed,
            progress=lambda s: print(s, file=sys.stderr, flush=True),
            parts=(args.only,) if args.only else ("api", "webhooks"),
        )
    print(json.dumps(summary))
    return 0 if summary["clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
