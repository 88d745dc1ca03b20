"""Server settings: one dataclass, the single home of the web layer's limits and defaults."""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from emomusic.errors import EmomusicError

# Request bounds of the web layer. They are tighter than the library's own limits
# (compose.MAX_BARS = 512, melody.MAX_BARS = 256, plan_session: 180 minutes) so that one
# request stays a few seconds of work on a laptop.
MAX_BARS = 64
MAX_SEED = 2**31 - 1
MAX_SESSION_MINUTES = 60.0
MIN_CLIP_SECONDS = 5.0
MAX_CLIP_SECONDS = 60.0
MAX_VIA = 4
MAX_UPLOAD_BYTES = 5 * 2**20


@dataclass
class Settings:
    """What ``emomusic serve`` and :func:`emomusic.web.main.create_app` are configured with."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # generation threads (each runs one job at a time)
    max_queue: int = 8  # jobs waiting for a worker; one more gets HTTP 429
    ttl_s: float = 3600.0  # a finished job's folder is removed this long after it ended
    abandon_s: float = 300.0  # a session job nobody asked about for this long is cancelled
    max_job_s: float = 1800.0  # a job running longer than this is cancelled
    sweep_s: float = 30.0  # how often expired and abandoned jobs are looked for
    max_kept: int = 256  # finished jobs kept for download at most; the oldest go first beyond that
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    torch_threads: int = 1  # torch's process-wide intra-op threads, set once at start
    work_dir: Path | None = None  # where job folders live (default: a fresh temp folder)
    soundfont: Path | None = None  # SoundFont for WAV (default: emomusic.render's)
    compose_checkpoint: Path | None = None
    melody_checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise EmomusicError(f"workers must be 1..64, got {self.workers!r}")
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or not 0 <= self.max_queue <= 1000:
            raise EmomusicError(f"the queue length must be 0..1000, got {self.max_queue!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise EmomusicError(f"port must be 0..65535, got {self.port!r}")
        for name in ("ttl_s", "abandon_s", "max_job_s", "sweep_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise EmomusicError(f"{name} must be a positive number of seconds, got {v!r}")
        if isinstance(self.max_kept, bool) or not isinstance(self.max_kept, int) or not 1 <= self.max_kept <= 100_000:
            raise EmomusicError(f"max_kept must be 1..100000, got {self.max_kept!r}")
        if not 1 <= int(self.max_upload_bytes) <= 2**30:
            raise EmomusicError(f"max_upload_bytes must be 1..2**30, got {self.max_upload_bytes}")
        if not 1 <= int(self.torch_threads) <= 256:
            raise EmomusicError(f"torch_threads must be 1..256, got {self.torch_threads}")
        for name in ("work_dir", "soundfont", "compose_checkpoint", "melody_checkpoint"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, Path(v))

    @property
    def public(self) -> bool:
        """Whether the server listens beyond this machine."""
        return self.host not in ("127.0.0.1", "localhost", "::1")

    def make_jobs_dir(self) -> Path:
        """A new folder for this server's jobs, inside ``work_dir`` (default: the system's temp
        folder); the server removes it when it stops, never ``work_dir`` itself."""
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="emomusic-web-", dir=self.work_dir))

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise EmomusicError(f"unknown server setting {unknown[0]!r}")
        return cls(**d)
