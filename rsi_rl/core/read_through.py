"""Read-only attributes read through to another object: :class:`ReadThrough`, one
descriptor in place of a property per forwarded name (the env's campaign state, the
agents' view of the env).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar, overload

T = TypeVar("T")


class ReadThrough(Generic[T]):
    """A read-only attribute whose value is the attribute of the same name of another
    object: ``owner.name`` reads ``source(owner, "name").name``.

    ``source`` gives the object to read from; it may raise instead (e.g. before that
    object exists, naming the attribute that was read). Annotate the attribute with its
    type for type checkers.

    Example:
        >>> class Point:
        ...     def __init__(self, z: complex):
        ...         self.z = z
        ...     real: ReadThrough[float] = ReadThrough(lambda p, name: p.z, "the x coordinate")
        >>> Point(3 + 4j).real
        3.0
    """

    def __init__(self, source: Callable[[Any, str], Any], doc: str | None = None) -> None:
        self.source = source
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> ReadThrough[T]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(self.source(obj, self.name), self.name)

    def __set__(self, obj: object, value: Any) -> NoReturn:
        raise AttributeError(f"{type(obj).__name__}.{self.name} is read-only")


__all__ = ["ReadThrough"]
