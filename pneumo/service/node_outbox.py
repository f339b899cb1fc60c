"""The DICOM node's retry queue: outputs (SR, Grad-CAM) the destination did not take are kept on
disk and sent again later, because their sender already got 0x0000 and will not send the film
again. A folder of Part 10 files, 0700, each file 0600 (they carry the patient's identifiers),
named by time and a random id only; bounded in bytes and files so a PACS that stays down cannot
fill the disk. What leaves this module for a log line: counts, never a name or an identifier."""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".dcm"


@dataclass(frozen=True)
class OutboxLimits:
    max_bytes: int = 1 << 30          # 1 GiB of outputs waiting (a Grad-CAM is ~3 MB, an SR ~20 KB)
    max_files: int = 2000
    retry_seconds: float = 30.0       # how often the node tries the destination again


class Outbox:
    def __init__(self, folder: Path, limits: OutboxLimits = OutboxLimits()):
        self.folder, self.limits = Path(folder), limits
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    def files(self) -> list[Path]:
        """Waiting files, oldest first."""
        return sorted(p for p in self.folder.glob(f"*{SUFFIX}") if p.is_file())

    def size(self) -> tuple[int, int]:
        """(files, bytes) waiting."""
        files = self.files()
        return len(files), sum(p.stat().st_size for p in files)

    def put(self, items: list[tuple[str, bytes]]) -> bool:
        """Keep one case's outputs [(kind, Part 10 bytes)] together, or none of them when the bound
        would be passed; True when kept."""
        count, used = self.size()
        need = sum(len(data) for _, data in items)
        if count + len(items) > self.limits.max_files or used + need > self.limits.max_bytes:
            return False
        stem = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"
        for i, (kind, data) in enumerate(items):
            final = self.folder / f"{stem}-{i}-{kind}{SUFFIX}"
            tmp = final.with_suffix(".part")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        return True

    def retry(self, send) -> tuple[int, int]:
        """send(list of paths) -> the paths that were taken; those are removed. Returns (sent, left)."""
        files = self.files()
        if not files:
            return 0, 0
        taken = send(files)
        for path in taken:
            path.unlink(missing_ok=True)
        return len(taken), len(files) - len(taken)
