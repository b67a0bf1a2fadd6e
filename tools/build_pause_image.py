#!/usr/bin/env python3
"""Build the kybernetes pause (pod sandbox) image as an OCI archive.

Usage: build_pause_image.py [OUT_DIR]   (default: build/pause)

Compiles the static C pause program with gcc and packs it with kybernetes' OCI
writer; prints the archive path.  The node agent does the same on demand (into its
data dir), so this is only needed to pre-build or to inspect the image, e.g.
`ctr -n k8s.io images import $(tools/build_pause_image.py)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kybernetes.kubelet.images_pause import PAUSE_IMAGE, build_pause_image  # noqa: E402


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "build" / "pause"
    archive = build_pause_image(out)
    print(archive)
    print(f"image: {PAUSE_IMAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
