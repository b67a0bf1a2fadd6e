"""The pod sandbox ("pause") image, built by kybernetes itself.

No public registry is reachable from the machines kybernetes targets, so the
sandbox image is a tiny static C program compiled here with gcc and packed with
our OCI writer (images_oci).  It sleeps in pause(2), reaps children (it is PID 1
when the pod shares its PID namespace) and exits 0 on SIGTERM/SIGINT so that
StopPodSandbox is immediate.

The image reference lives under `localhost/` on purpose: if containerd ever
tried to pull it, the request would go to this host only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Union

from kybernetes.kubelet.images_oci import ImageBuilder, write_oci_archive

PAUSE_VERSION = "3.10-kyb.1"
PAUSE_IMAGE = f"localhost/kybernetes/pause:{PAUSE_VERSION}"

PAUSE_C = r"""
/* kybernetes pause: PID 1 of a pod sandbox.  Sleeps, reaps, exits on TERM/INT. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {}
}

int main(int argc, char **argv) {
    struct sigaction sa;
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        static const char v[] = "kybernetes pause " PAUSE_VERSION "\n";
        write(1, v, sizeof v - 1);
        return 0;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, 0);
    sigaction(SIGINT, &sa, 0);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, 0);
    for (;;) pause();
}
"""


class PauseBuildError(RuntimeError):
    pass


def _compile(out: Path, cc: str) -> None:
    with tempfile.TemporaryDirectory(prefix="kyb-pause-") as tmp:
        src = Path(tmp, "pause.c")
        src.write_text(PAUSE_C)
        cmd = [cc, "-static", "-Os", "-s", f'-DPAUSE_VERSION="{PAUSE_VERSION}"', "-o", str(out), str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise PauseBuildError(f"building the pause binary failed ({' '.join(cmd)}):\n{r.stderr.strip()}")


def build_pause_image(cache_dir: Union[str, Path], *, cc: Optional[str] = None,
                      image: str = PAUSE_IMAGE) -> Path:
    """Return the path of an OCI archive holding the pause image, building it
    (gcc -static) into `cache_dir` unless an up-to-date one is there."""
    cc = cc or os.environ.get("CC") or "gcc"
    if shutil.which(cc) is None:
        raise PauseBuildError(f"no C compiler {cc!r}: the pause image is compiled locally (install gcc)")
    key = hashlib.sha256(f"{PAUSE_C}\0{PAUSE_VERSION}\0{image}".encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir)
    archive = cache_dir / f"pause-{key}.oci.tar"
    if archive.exists():
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pause-", dir=cache_dir) as tmp:
        binary = Path(tmp, "pause")
        _compile(binary, cc)
        img = ImageBuilder(entrypoint=["/pause"], labels={"io.kybernetes.image": "pause"})
        img.add_file("/pause", binary.read_bytes(), mode=0o755)
        write_oci_archive(archive, {image: img.build()})
    return archive
