"""A pickle read as data: its opcodes run on a stack of placeholders, never unpickled.

`read_pickle(data)` walks the opcodes with `pickletools.genops` and keeps a symbolic stack, as
`pickle.Unpickler` would, except that a class or function becomes a `Global(module, name)` and
calling one becomes a `Built(callable, args, state)`: nothing of the file's is imported or run.
That is enough to tell which modules the pickle needs, what the outermost object is, and what its
state holds (a scikit-learn Pipeline's steps, `_sklearn_version`), which an XGBoost, torch or
sklearn model does not hide.

joblib writes each numpy array's bytes raw, right after the `NumpyArrayWrapper` that describes it
(shape and dtype; an object array as a pickle of its own): the walk steps over them as joblib's
loader does. It stops quietly at the first thing that is not an opcode (the end of the bytes read,
an array it cannot size); `Skeleton.complete` says whether it reached STOP.
"""

from __future__ import annotations

import io
import math
import pickletools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

MARK = object()  # the stack's mark, as pickle's MARK opcode pushes it
JOBLIB_ARRAY = ("joblib.numpy_pickle", "NumpyArrayWrapper")  # its array's bytes follow, raw
UNSIZED_ARRAY = "cannot size a joblib array"
NUMPY_TYPESTR = re.compile(r"^[<>|=]?([a-zA-Z])(\d+)$")  # `<f8`, `i4`, `U5` (5 characters of 4 bytes)


@dataclass(frozen=True, eq=False)
class Global:
    """A class or function the pickle names (GLOBAL, STACK_GLOBAL, INST)."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Built:
    """What calling `callable` (a Global, usually a class) with `args` would make, then BUILD's state."""

    callable: Any
    args: Any = ()
    state: Any = None

    @property
    def cls(self) -> Optional[Global]:
        """The class made: the callable itself, or the class copyreg and cloudpickle reconstruct."""
        if isinstance(self.callable, Global) and self.callable.name in ("__newobj__", "_reconstructor"):
            first = self.args[0] if isinstance(self.args, tuple) and self.args else None
            return first if isinstance(first, Global) else None
        return self.callable if isinstance(self.callable, Global) else None


@dataclass
class Skeleton:
    globals: list[Global] = field(default_factory=list)  # in the order the pickle names them
    root: Any = None  # the pickled object, when the walk reached STOP
    stack: list[Any] = field(default_factory=list)  # what was on the stack when the walk stopped
    complete: bool = False
    opcodes: int = 0  # how many opcodes the walk read
    stopped_by: Optional[str] = None  # why the walk ended before STOP (pickletools' words)

    @property
    def top(self) -> Any:
        """The outermost object: the result, or, for a walk cut short, the first thing built."""
        if self.complete:
            return self.root
        return next((item for item in self.stack if isinstance(item, Built)), None)


def read_pickle(data: bytes) -> Skeleton:
    skeleton = Skeleton()
    try:
        skeleton.root = _walk(io.BytesIO(data), skeleton, outermost=True)
        skeleton.complete = True
    except ValueError as error:  # pickletools: not an opcode, or the bytes ran out
        skeleton.stopped_by = str(error)
    except (KeyError, IndexError, TypeError, AttributeError) as error:  # opcodes no pickler writes
        skeleton.stopped_by = f"opcode {skeleton.opcodes} does not fit what came before ({error!r})"
    return skeleton


def _walk(stream: io.BytesIO, skeleton: Skeleton, outermost: bool = False) -> Any:
    """One pickle from `stream`'s position to its STOP: what it would return, as placeholders."""
    machine = _Machine(skeleton)
    if outermost:
        skeleton.stack = machine.stack  # what a walk cut short leaves there
    for opcode, argument, _position in pickletools.genops(stream):
        skeleton.opcodes += 1
        machine.step(opcode.name, argument)
        if opcode.name == "BUILD" and _is_joblib_array(machine.stack[-1]):
            _step_over_array(stream, machine.stack[-1].state, skeleton)
    return machine.result


def _is_joblib_array(value: Any) -> bool:
    return isinstance(value, Built) and value.cls is not None and (value.cls.module, value.cls.name) == JOBLIB_ARRAY


def _step_over_array(stream: io.BytesIO, state: Any, skeleton: Skeleton) -> None:
    """Past the array joblib wrote after its wrapper, read the way joblib's NumpyArrayWrapper reads it."""
    state = state if isinstance(state, dict) else {}
    dtype = state.get("dtype")
    typestr = dtype.args[0] if isinstance(dtype, Built) and dtype.args and isinstance(dtype.args[0], str) else ""
    if typestr.lstrip("<>|=").startswith("O"):
        _walk(stream, skeleton)  # an object array is a pickle of its own
        return
    size = _array_bytes(typestr, state.get("shape"))
    if state.get("numpy_array_alignment_bytes") is not None:
        stream.seek(int.from_bytes(stream.read(1), "little"), io.SEEK_CUR)  # its padding
    stream.seek(size, io.SEEK_CUR)


def _array_bytes(typestr: str, shape: Any) -> int:
    kind = NUMPY_TYPESTR.match(typestr)
    if kind is None or not isinstance(shape, tuple) or not all(isinstance(side, int) for side in shape):
        raise ValueError(f"{UNSIZED_ARRAY} of dtype {typestr!r} and shape {shape!r}")
    itemsize = int(kind.group(2)) * (4 if kind.group(1) == "U" else 1)
    return itemsize * math.prod(shape)


class _Machine:
    """pickle.Unpickler's stack discipline over placeholders; one method per family of opcodes."""

    def __init__(self, skeleton: Skeleton) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.skeleton = skeleton
        self.result: Any = None
        self.handlers: dict[str, Callable[[Any], Any]] = {
            **dict.fromkeys(("MARK",), lambda _: self.stack.append(MARK)),
            **dict.fromkeys(_PUSHES_ARGUMENT, self.stack.append),
            **{name: self._pusher(make) for name, make in _FRESH.items()},
            "TUPLE": lambda _: self.stack.append(tuple(self._pop_mark())),
            "TUPLE1": lambda _: self._pop_tuple(1),
            "TUPLE2": lambda _: self._pop_tuple(2),
            "TUPLE3": lambda _: self._pop_tuple(3),
            "LIST": lambda _: self.stack.append(self._pop_mark()),
            "DICT": lambda _: self.stack.append(_pairs(self._pop_mark())),
            "FROZENSET": lambda _: self.stack.append(frozenset(self._pop_mark())),
            "APPEND": lambda _: _extend(self.stack[-2], [self.stack.pop()]),
            "APPENDS": lambda _: self._into_top(_extend, self._pop_mark()),
            "SETITEM": lambda _: self._into_top(_update, [self.stack.pop(-2), self.stack.pop()]),
            "SETITEMS": lambda _: self._into_top(_update, self._pop_mark()),
            "ADDITEMS": lambda _: self._into_top(_add, self._pop_mark()),
            "GLOBAL": lambda text: self._global(*str(text).split(" ", 1)),
            "STACK_GLOBAL": lambda _: self._global(*(str(part) for part in self._pop_items(2))),
            "INST": lambda text: self._inst(*str(text).split(" ", 1)),
            "OBJ": lambda _: self._obj(self._pop_mark()),
            "REDUCE": lambda _: self.stack.append(Built(*self._pop_items(2))),
            "NEWOBJ": lambda _: self.stack.append(Built(*self._pop_items(2))),
            "NEWOBJ_EX": lambda _: self.stack.append(Built(*self._pop_items(3)[:2])),
            "BUILD": lambda _: self._build(self.stack.pop()),
            "PERSID": lambda pid: self.stack.append(Built(Global("<persistent>", "id"), (pid,))),
            "BINPERSID": lambda _: self.stack.append(Built(Global("<persistent>", "id"), (self.stack.pop(),))),
            **dict.fromkeys(("EXT1", "EXT2", "EXT4"), lambda code: self._global("<extension>", str(code))),
            **dict.fromkeys(("PUT", "BINPUT", "LONG_BINPUT"), lambda key: self.memo.__setitem__(int(key), self.stack[-1])),
            "MEMOIZE": lambda _: self.memo.__setitem__(len(self.memo), self.stack[-1]),
            **dict.fromkeys(("GET", "BINGET", "LONG_BINGET"), lambda key: self.stack.append(self.memo[int(key)])),
            "POP": lambda _: self.stack.pop(),
            "POP_MARK": lambda _: self._pop_mark(),
            "DUP": lambda _: self.stack.append(self.stack[-1]),
            "STOP": lambda _: self._stop(),
            **dict.fromkeys(("PROTO", "FRAME", "READONLY_BUFFER"), lambda _: None),
        }

    def step(self, name: str, argument: Any) -> None:
        self.handlers[name](argument)

    def _pusher(self, make: Callable[[], Any]) -> Callable[[Any], None]:
        """A handler pushing a fresh `make()` (a constant, or a new empty container) whatever the argument."""
        return lambda _: self.stack.append(make())

    def _pop_mark(self) -> list[Any]:
        index = len(self.stack) - 1 - self.stack[::-1].index(MARK)
        items = self.stack[index + 1 :]
        del self.stack[index:]
        return items

    def _pop_items(self, count: int) -> list[Any]:
        items = self.stack[-count:]
        if len(items) != count:
            raise IndexError("the stack holds fewer items than the opcode takes")
        del self.stack[-count:]
        return items

    def _pop_tuple(self, count: int) -> None:
        self.stack.append(tuple(self._pop_items(count)))

    def _into_top(self, add: Callable[[Any, list[Any]], None], items: list[Any]) -> None:
        add(self.stack[-1], items)

    def _global(self, module: str, name: str) -> None:
        named = Global(module, name)
        self.skeleton.globals.append(named)
        self.stack.append(named)

    def _inst(self, module: str, name: str) -> None:
        self._global(module, name)
        cls = self.stack.pop()
        self.stack.append(Built(cls, tuple(self._pop_mark())))

    def _obj(self, items: list[Any]) -> None:
        self.stack.append(Built(items[0], tuple(items[1:])))

    def _build(self, state: Any) -> None:
        if isinstance(self.stack[-1], Built):
            self.stack[-1].state = state

    def _stop(self) -> None:
        self.result = self.stack.pop()


# Opcodes that push a constant or a new empty container, whatever their argument.
_FRESH: dict[str, Callable[[], Any]] = {
    "NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False, "NEXT_BUFFER": lambda: None,
    "EMPTY_TUPLE": tuple, "EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_SET": set,
}  # fmt: skip
_PUSHES_ARGUMENT = (
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
)  # fmt: skip


def _pairs(items: list[Any]) -> dict:
    return {_key(items[index]): items[index + 1] for index in range(0, len(items) - 1, 2)}


def _key(value: Any) -> Any:
    """A dict key as pickled; unhashable placeholders (a list) become their repr."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _extend(target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(items)  # anything else (a Built list subclass) keeps no items: not needed


def _update(target: Any, items: list[Any]) -> None:
    if isinstance(target, dict):
        target.update(_pairs(items))


def _add(target: Any, items: list[Any]) -> None:
    if isinstance(target, set):
        target.update(_key(item) for item in items)
