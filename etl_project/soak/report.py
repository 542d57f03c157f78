"""The soak's JSON, rewritten (atomically) after every phase, so a long run in the background leaves its
figures so far in ``--out`` even if it is stopped; ``phase`` says how far it got."""

from __future__ import annotations

import json
import os
from pathlib import Path


class SoakReport:
    def __init__(self, out: Path | None):
        self.out = out
        self.data: dict[str, object] = {}

    def update(self, **values: object) -> None:
        self.data.update(values)
        if self.out is not None:
            tmp = self.out.with_name(self.out.name + ".tmp")
            tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
            os.replace(tmp, self.out)
