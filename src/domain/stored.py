"""The storage id of an entity: `None` until a repository stores it, then set for good."""

from __future__ import annotations


class NotStoredError(ValueError):
    """An entity's storage id was asked for before it was stored: a programming error (a
    repository asked to update an entity it never added, say)."""


class Stored:
    """Gives an entity dataclass (which declares `id: int | None = None`) `stored_id`: the id
    of an entity that came from a repository, without an `assert` at each use."""

    __slots__ = ()
    id: int | None

    @property
    def stored_id(self) -> int:
        if self.id is None:
            raise NotStoredError(f"this {type(self).__name__} has no id: it has not been stored")
        return self.id
