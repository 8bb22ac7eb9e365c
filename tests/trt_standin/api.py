"""One TensorRT version's recorded Python API (record.py's JSON) and pybind11's call rules on it.

`Api.bind(owner, name, args, kwargs, resolve)` does what pybind11's dispatcher does with a call:
try each overload in order; map positional arguments, then keywords (auto-named `argN` parameters
take no keyword); refuse a missing or unknown argument; and load each value with the caster of its
declared type (int, float, bool, str, bytes, buffer, sequences, enums, classes).  The casters keep
pybind11's own leniencies where they exist (an int for a float, bytes for a str, a list for `Dims`)
and refuse what pybind11 refuses (a str for an int, a float for an int, an enum of another type,
None where the type is not optional, a `pathlib.Path` for a str).
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Tuple

from .record import split_top

INT_TYPES = {"int", "typing.SupportsInt", "SupportsInt", "typing.SupportsIndex"}
FLOAT_TYPES = {"float", "typing.SupportsFloat", "SupportsFloat"}
BUFFER_TYPES = {"buffer", "typing_extensions.Buffer", "collections.abc.Buffer", "Buffer", "memoryview"}
SEQUENCE_TYPES = {"List", "list", "typing.List", "collections.abc.Sequence", "Sequence", "typing.Sequence"}
TUPLE_TYPES = {"Tuple", "tuple", "typing.Tuple"}
ANY_TYPES = {"object", "typing.Any", "Any", "numpy.ndarray", "slice", "capsule", "typing_extensions.CapsuleType",
             "types.CapsuleType", "Iterable", "Iterator", "collections.abc.Iterable", "collections.abc.Iterator",
             "collections.abc.Callable", "Callable", "typing.Callable"}
AUTO_NAME = re.compile(r"^arg\d+$")


class Api:
    """Classes, module functions and module attributes of one TensorRT version, as recorded."""

    def __init__(self, data: dict):
        self.data = data
        self.version: str = data["version"]
        self.classes: Dict[str, dict] = data["classes"]
        self.functions: Dict[str, dict] = data["module"]["functions"]
        self.attributes: Dict[str, dict] = data["module"]["attributes"]

    # -- what exists ---------------------------------------------------------------------------------
    def mro(self, name: str) -> List[str]:
        """`name` and its recorded bases, nearest first."""
        order, pending = [], [name]
        while pending:
            current = pending.pop(0)
            if current in self.classes and current not in order:
                order.append(current)
                pending.extend(self.classes[current]["bases"])
        return order

    def member(self, owner: str, name: str) -> Optional[Tuple[str, str, dict]]:
        """(kind, defining class, record) of owner.name; kind: method | property | attribute | enum_member."""
        for cls in self.mro(owner):
            entry = self.classes[cls]
            if entry["enum"] is not None and name in entry["enum"]:
                return "enum_member", cls, {"value": entry["enum"][name]}
            for kind, table in (("method", entry["methods"]), ("property", entry["properties"]),
                                ("attribute", entry["attributes"])):
                if name in table:
                    return kind, cls, table[name]
        return None

    def has(self, owner: Optional[str], name: str) -> bool:
        """Whether `owner.name` (owner None: the module) exists in this version."""
        if owner is None:
            return name in self.functions or name in self.attributes
        if owner not in self.classes:
            return False
        if self.classes[owner]["enum"] is not None and name in ("name", "value", "__members__"):
            return True
        return self.member(owner, name) is not None

    def counts(self) -> Dict[str, int]:
        classes = self.classes.values()
        return {"classes": len(self.classes),
                "methods": sum(len([m for m in c["methods"] if not m.startswith("__")]) for c in classes),
                "properties": sum(len(c["properties"]) for c in classes),
                "enums": sum(1 for c in classes if c["enum"] is not None)}

    # -- calls ---------------------------------------------------------------------------------------
    def bind(self, where: str, overloads: List[dict], args: tuple, kwargs: dict,
             resolve: Callable[[str], Optional[type]]) -> Tuple[int, Dict[str, object]]:
        """(overload index, {parameter: value}) of the first overload that takes this call, or TypeError."""
        problems = []
        for index, overload in enumerate(overloads):
            bound, problem = _bind_one(overload, args, kwargs, resolve)
            if problem is None:
                return index, bound
            problems.append(problem)
        supported = "\n".join(f"    {i + 1}. {o['text']}" for i, o in enumerate(overloads))
        invoked = ", ".join([_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()])
        raise TypeError(f"TensorRT {self.version}: {where}(): incompatible function arguments "
                        f"({'; '.join(problems)}). The following argument types are supported:\n{supported}\n\n"
                        f"Invoked with: {invoked}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _bind_one(overload: dict, args: tuple, kwargs: dict, resolve) -> Tuple[Dict[str, object], Optional[str]]:
    params = overload["params"]
    if any(p.get("kind") in ("var_positional", "var_keyword") for p in params):
        return dict(kwargs, _args=args), None  # (*args, **kwargs): pybind11 checks nothing
    named = [p for p in params if not p.get("kind")]
    if len(args) > len(named):
        return {}, f"{len(args)} positional arguments for {len(named)} parameters"
    bound: Dict[str, object] = {}
    for param, value in zip(named, args):
        bound[param["name"]] = value
    for key, value in kwargs.items():
        param = next((p for p in named if p["name"] == key and not AUTO_NAME.match(key)), None)
        if param is None:
            return {}, f"unknown keyword argument '{key}'"
        if key in bound:
            return {}, f"argument '{key}' given twice"
        bound[key] = value
    for param in named:
        name = param["name"]
        if name not in bound:
            if not param.get("has_default"):
                return {}, f"missing argument '{name}'"
            continue
        problem = check_value(param["type"], bound[name], resolve,
                              none_ok=param.get("has_default") and param.get("default") == "None")
        if problem:
            return {}, f"argument '{name}': {problem}"
    return bound, None


def normalize(type_text: str) -> str:
    """C++ names pybind11 left in a signature (`nvinfer1::ILogger::Severity`) -> the Python class name."""
    text = type_text.strip()
    for namespace in ("nvinfer1::v_1_0::", "nvinfer1::", "nvonnxparser::"):
        text = text.replace(namespace, "")
    return text.replace("::", ".")


def _generic(text: str) -> Tuple[str, List[str]]:
    if text.endswith("]") and "[" in text:
        head, _, inner = text.partition("[")
        return head.strip(), split_top(inner[:-1])
    return text, []


def check_value(type_text: str, value, resolve, none_ok: bool = False) -> Optional[str]:
    """None if pybind11's caster for `type_text` would load `value`, else why not."""
    text = normalize(type_text)
    if " | " in text:
        options = [normalize(t) for t in split_top(text, "|")]
        return None if any(check_value(t, value, resolve, none_ok) is None for t in options) else \
            f"expected {text}, got {type(value).__name__}"
    head, inner = _generic(text)
    if head in ("Optional", "typing.Optional"):
        return None if value is None else check_value(inner[0], value, resolve)
    if head in ("Union", "typing.Union"):
        return None if any(check_value(t, value, resolve, none_ok) is None for t in inner) else \
            f"expected {text}, got {type(value).__name__}"
    if head in ANY_TYPES:
        return None
    if text == "None":
        return None if value is None else f"expected None, got {type(value).__name__}"
    if value is None and none_ok:
        return None
    if head in INT_TYPES:
        ok = isinstance(value, int) or (not isinstance(value, (float, str, bytes)) and value is not None
                                        and hasattr(type(value), "__index__"))
        return None if ok else f"expected int, got {type(value).__name__}"
    if head in FLOAT_TYPES:
        ok = isinstance(value, (int, float)) or (value is not None and not isinstance(value, (str, bytes))
                                                 and (hasattr(type(value), "__float__")
                                                      or hasattr(type(value), "__index__")))
        return None if ok else f"expected float, got {type(value).__name__}"
    if head == "bool":  # pybind11 (convert mode): True/False, None, and anything with a numeric truth value
        ok = value is None or isinstance(value, (bool, int, float)) or hasattr(type(value), "__bool__") \
            and not isinstance(value, (str, bytes, list, tuple, dict))
        return None if ok else f"expected bool, got {type(value).__name__}"
    if head == "str":
        return None if isinstance(value, (str, bytes, bytearray)) else f"expected str, got {type(value).__name__}"
    if head == "bytes":
        return None if isinstance(value, bytes) else f"expected bytes, got {type(value).__name__}"
    if head in BUFFER_TYPES:
        try:
            memoryview(value)
        except TypeError:
            return f"expected a buffer (bytes, bytearray, memoryview, IHostMemory), got {type(value).__name__}"
        return None
    if head in SEQUENCE_TYPES:
        if head == "list" and not inner:
            return None if isinstance(value, list) else f"expected list, got {type(value).__name__}"
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
            return f"expected a sequence, got {type(value).__name__}"
        if inner:
            for item in value:
                problem = check_value(inner[0], item, resolve)
                if problem:
                    return f"item: {problem}"
        return None
    if head in TUPLE_TYPES:
        if not inner:
            return None if isinstance(value, tuple) else f"expected tuple, got {type(value).__name__}"
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != len(inner):
            return f"expected a {len(inner)}-tuple, got {type(value).__name__}"
        for item_type, item in zip(inner, value):
            problem = check_value(item_type, item, resolve)
            if problem:
                return f"item: {problem}"
        return None
    if head in ("Dict", "dict", "typing.Dict"):
        return None if isinstance(value, dict) else f"expected dict, got {type(value).__name__}"
    cls = resolve(text)
    if cls is None:
        return None  # a type this record does not know: not checked
    if isinstance(value, cls):
        return None
    if text == "Dims" and isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return None  # TensorRT registers implicit conversions from lists and tuples of ints
    if value is None:
        return f"expected {text}, got None"
    return f"expected {text}, got {type(value).__name__}"
