"""Typed face of the compiled replay fast path (see router.pyx)."""

from typing_extensions import disjoint_base

from bookengine._core.l2book import L2BookCore
from bookengine._core.l3book import L3BookCore
from bookengine.core_types import STOP_CROSSED as STOP_CROSSED
from bookengine.core_types import STOP_END as STOP_END
from bookengine.core_types import STOP_HANDOFF as STOP_HANDOFF
from bookengine.core_types import STOP_MISMATCH as STOP_MISMATCH
from bookengine.errors import ChecksumError

@disjoint_base
class BookRouter:
    """Books the session trusts, by channel and symbol, and the loop that feeds them lines."""

    @property
    def failure(self) -> tuple[int, str, ChecksumError | None, int] | None:
        """After STOP_MISMATCH/STOP_CROSSED: (kind, symbol, error, recv_ts_ns)."""
    @property
    def lines(self) -> int: ...
    @property
    def last_recv_ts(self) -> int: ...
    require_recv_ts: bool
    @staticmethod
    def _key(kind: int, symbol: str) -> bytes: ...
    def add(self, symbol: str, book: L2BookCore | L3BookCore) -> None: ...
    def remove(self, kind: int, symbol: str) -> None: ...
    def routes(self, kind: int, symbol: str) -> bool: ...
    def take_counts(self) -> dict[tuple[int, str], tuple[int, int, int]]: ...
    def apply_lines(self, data: bytes, pos: int = 0) -> tuple[int, int]: ...

def count_lines(data: bytes) -> int: ...
