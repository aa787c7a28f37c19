"""Stage download_cifar10: CIFAR-10 into data/downloads/cifar10 when `cnn.dataset` asks for it.

A sibling of generate rather than part of it: its output persists (DVC keeps the 170 MB
archive instead of deleting it before each run) and changing `cnn.dataset` re-runs only
this stage and the CNN. With the default `digits` it writes a note and downloads nothing,
so the pipeline stays offline.
"""

from __future__ import annotations

from mlfund.core.config import Params
from stages.common import DOWNLOADS, log, run_stage

FOLDER = DOWNLOADS / "cifar10"


def main(params: Params) -> None:
    p = params.cnn
    FOLDER.mkdir(parents=True, exist_ok=True)
    if p.dataset != "cifar10":
        (FOLDER / "README").write_text(f"not downloaded: cnn.dataset is {p.dataset}\n")
        return
    from mlfund.families.cnn.cifar10 import download_cifar10

    (FOLDER / "README").unlink(missing_ok=True)
    log.info("CIFAR-10 ready in %s", download_cifar10(FOLDER, p.cifar10_url, p.cifar10_md5))


if __name__ == "__main__":
    run_stage(main)
