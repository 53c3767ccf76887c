"""User errors raised in DataLoader workers reach the main process as they were raised.

Torch re-raises a worker's error with its traceback folded into the message; instead the worker
returns a :class:`~mme.errors.MMEError` as the item and :class:`UnwrappingLoader` raises it
(worker traceback chained as the cause). Any other exception keeps torch's handling.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from mme.errors import MMEError


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker process, as text."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


@dataclass
class WorkerError:
    """A user error caught in a worker, sent to the main process in place of an item or batch."""

    error: MMEError
    traceback: str

    def reraise(self) -> NoReturn:
        raise self.error from RemoteTraceback(self.traceback)


def capture(error: MMEError) -> WorkerError:
    return WorkerError(error, "".join(traceback.format_exception(error)))


@dataclass
class PassWorkerErrors:
    """A collate function that returns a worker's :class:`WorkerError` instead of collating around it."""

    collate: Callable[[list[Any]], Any]

    def __call__(self, items: Sequence[Any]) -> Any:
        for item in items:
            if isinstance(item, WorkerError):
                return item
        return self.collate(list(items))


class UnwrappingLoader(torch.utils.data.DataLoader):
    """A ``DataLoader`` that raises the user errors its workers sent as batches."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if isinstance(batch, WorkerError):
                batch.reraise()
            yield batch
