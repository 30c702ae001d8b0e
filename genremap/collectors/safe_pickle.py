"""A restricted, size-capped unpickler for the seed notebook's pickle of plain data.

Two dangers, two guards:

- Code: a pickle names callables (`os.system`, `builtins.eval`) and calls them. Only `set`
  and `frozenset` can be named (old protocols build sets by calling them); every other name,
  every persistent id and every opcode that builds class instances is refused.
- Size: a pickle re-uses objects through its memo, so 1 MB can hold one 100,000-genre list
  referenced by 5,000 tracks: half a billion genres once each track's list is read. Every
  opcode (at most one new object) counts one element and every re-use (memo get, dup) counts
  the full size of what it refers to (a string one element per 64 characters), as it is
  admitted; past `max_elements` the load stops. Re-used containers are immutable from then
  on (a pickle that changes one after sharing it is refused), so the count of a re-use stays
  exact and the count bounds the work of loading, hashing included.

The stdlib's pure-Python unpickler is used because the C one cannot be metered: loading is
a few times slower (about 2 s more for 200,000 seed-notebook tracks), but pickles are a
one-off legacy input. Its `load` loop is restated here to count opcodes cheaply; it relies
on the private `pickle._Unframer` and `pickle._Stop`, which the tests exercise.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from itertools import chain
from typing import Any, ClassVar

MAX_PICKLE_ELEMENTS = 20_000_000  # about a million seed-notebook tracks
TEXT_BLOCK = 64  # a string counts one element per this many characters when re-used

_ADMITTED = {"set": set, "frozenset": frozenset}
_CONTAINERS = (list, tuple, dict, set, frozenset)
_Op = Callable[[Any], None]


class PickleTooLarge(pickle.UnpicklingError):
    """The pickle expands to more elements than allowed."""


def _opcode(name: str) -> int:
    code: int = getattr(pickle, name)[0]
    return code


class RestrictedUnpickler(pickle._Unpickler):
    """Admits only plain containers, strings and numbers, and at most `max_elements` of them."""

    dispatch: ClassVar[dict[int, _Op]] = {}

    def __init__(self, file: io.BufferedIOBase, *, max_elements: int = MAX_PICKLE_ELEMENTS) -> None:
        super().__init__(file)
        self.max_elements = max_elements
        self.elements = 0
        # id → (object, expanded size) of every object re-used so far (the object is kept so
        # its id stays its own while loading).
        self._sizes: dict[int, tuple[Any, int]] = {}

    def load(self) -> Any:
        """The stdlib's pure-Python `load` loop (Python 3.11-3.13), counting one element per opcode."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack: list[list[Any]] = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch = self.read, self.dispatch
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError
                self.elements += 1
                if self.elements > self.max_elements:
                    raise self._too_large()
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            return stop.value

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _ADMITTED:
            return _ADMITTED[name]
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent reference")

    # --- metering -------------------------------------------------------------------------
    def _too_large(self) -> PickleTooLarge:
        return PickleTooLarge(
            f"expands to more than {self.max_elements:,} elements (a shared reference counts "
            "as many elements as it refers to)"
        )

    def _spend(self, elements: int) -> None:
        self.elements += elements
        if self.elements > self.max_elements:
            raise self._too_large()

    def _size(self, obj: Any) -> int:
        """Elements in `obj` with every shared reference expanded; cycles are refused."""
        known = self._sizes.get(id(obj))
        if known is not None:
            return known[1]
        if isinstance(obj, str | bytes | bytearray):
            return 1 + len(obj) // TEXT_BLOCK
        if not isinstance(obj, _CONTAINERS):
            return 1
        budget = self.max_elements - self.elements
        path = {id(obj)}
        frames: list[list[Any]] = [[obj, _children(obj), 1]]
        while frames:
            frame = frames[-1]
            for child in frame[1]:
                known = self._sizes.get(id(child))
                if known is not None:
                    frame[2] += known[1]
                elif isinstance(child, _CONTAINERS):
                    if id(child) in path:
                        raise pickle.UnpicklingError("refused a container that contains itself")
                    path.add(id(child))
                    frames.append([child, _children(child), 1])
                    break
                else:
                    frame[2] += self._size(child)
                if frame[2] > budget:
                    self._spend(frame[2])
            else:
                frames.pop()
                path.discard(id(frame[0]))
                self._sizes[id(frame[0])] = (frame[0], frame[2])
                if frames:
                    frames[-1][2] += frame[2]
        return self._sizes[id(obj)][1]

    def _check_target(self, target: Any) -> None:
        if id(target) in self._sizes:
            raise pickle.UnpicklingError("refused a pickle that changes a container after sharing it")


def _children(obj: Any) -> Any:
    return iter(chain.from_iterable(obj.items()) if isinstance(obj, dict) else obj)


def _reusing(op: _Op) -> _Op:
    """Memo gets and DUP: count the full size of the object pushed."""

    def run(self: RestrictedUnpickler) -> None:
        op(self)
        obj = self.stack[-1]
        # Shared strings (dict keys, genre and artist names) are most re-uses: sized inline.
        self._spend(1 + len(obj) // TEXT_BLOCK if type(obj) is str else self._size(obj))

    return run


def _mutating(op: _Op, target: Callable[[RestrictedUnpickler], Any]) -> _Op:
    """APPEND(S), SETITEM(S), ADDITEMS: refuse changing a container that was already shared."""

    def run(self: RestrictedUnpickler) -> None:
        self._check_target(target(self))
        op(self)

    return run


def _refused(name: str) -> _Op:
    def run(self: RestrictedUnpickler) -> None:
        raise pickle.UnpicklingError(f"refused the {name} opcode (it builds class instances)")

    return run


def _below_mark(self: RestrictedUnpickler) -> Any:
    return self.metastack[-1][-1]


def _build_dispatch() -> dict[int, _Op]:
    base: dict[int, _Op] = dict(pickle._Unpickler.dispatch)
    table = dict(base)
    for name in ("GET", "BINGET", "LONG_BINGET", "DUP"):
        table[_opcode(name)] = _reusing(base[_opcode(name)])
    mutations: dict[str, Callable[[RestrictedUnpickler], Any]] = {
        "APPEND": lambda self: self.stack[-2],
        "SETITEM": lambda self: self.stack[-3],
        "APPENDS": _below_mark,
        "SETITEMS": _below_mark,
        "ADDITEMS": _below_mark,
    }
    for name, target in mutations.items():
        table[_opcode(name)] = _mutating(base[_opcode(name)], target)
    for name in ("BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"):
        table[_opcode(name)] = _refused(name)
    return table


RestrictedUnpickler.dispatch = _build_dispatch()


def safe_unpickle(data: bytes, *, max_elements: int = MAX_PICKLE_ELEMENTS) -> Any:
    """Unpickle `data` with RestrictedUnpickler: plain dicts, lists, tuples, sets, str, numbers."""
    return RestrictedUnpickler(io.BytesIO(data), max_elements=max_elements).load()
