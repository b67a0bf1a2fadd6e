"""The record of images imported for air-gapped use: image GC never removes them.

Every import — `kyb images import` into a running containerd, or an archive staged in
DATA/agent/images/ and imported at the node's start — adds the image names to the
`.images` list of DATA/agent/images/.imported.json (the file the start-time import
keeps its progress in).  The record outlives the runtime's state, so an image re-imported
after containerd lost it is still protected, and it is kept until the user removes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Union

RECORD = ".imported.json"
KEY = ".images"


def airgap_images(import_dir: Union[str, Path]) -> set[str]:
    """Names of every image ever imported for air-gapped use on this node."""
    try:
        return set(json.loads((Path(import_dir) / RECORD).read_text()).get(KEY, []))
    except (OSError, ValueError, AttributeError):
        return set()


def record_airgap_images(import_dir: Union[str, Path], names: Iterable[str]) -> None:
    """Add `names` to the record (atomically: a crash leaves the old or the new record)."""
    d = Path(import_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / RECORD
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[KEY] = sorted(set(data.get(KEY) or []) | set(names))
    fd, tmp = tempfile.mkstemp(prefix=".imported.", suffix=".tmp", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
