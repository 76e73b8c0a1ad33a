"""Types of the compiled core (bridge/_native.c)."""

from collections.abc import Callable
from typing import Any

def scan_lines(text: str, known: dict[Any, Any], samples: list[Any],
               slow: Callable[[str], bool], openmetrics: bool, chunk: int,
               max_samples: int) -> tuple[bool, int]: ...
def counter_increases(values: dict[Any, Any], last: dict[Any, Any],
                      increases: dict[Any, Any]) -> list[Any]: ...
def sort_samples(samples: list[Any], roles: dict[Any, Any], classify: Callable[[Any], Any],
                 cumulative_from: int, gauge: int) -> tuple[Any, Any, Any, int]: ...
def add_buckets(increases: dict[Any, Any], roles: dict[Any, Any], bucket: int,
                buckets_name: str) -> list[Any]: ...
