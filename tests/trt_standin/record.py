"""Record the Python API of a real TensorRT bindings module as JSON (run in a subprocess).

    LD_LIBRARY_PATH=STUBS python record.py WHEEL_DIR OUT.json

WHEEL_DIR holds the unpacked bindings wheel (`tensorrt_bindings/`); STUBS the one-line C
libraries that let its extension load without NVIDIA's (stubs.py).  What is written is what the
real module says about itself: every class (bases, whether it has a constructor), every method with
each overload's pybind11 signature from its `__doc__` (argument names, types, defaults, return
type), every property (getter and setter types, or no setter), every enum's members and values,
class constants, and the module's own functions and values.  "[DEPRECATED]" at the start of a
class's doc, in a method's doc or in its class's `:ivar` line for a property marks a name TensorRT
deprecates; the stand-in warns (DeprecationWarning) when it is used, as TensorRT's bindings do
through `PyErr_WarnEx` for the members they wrap as deprecated.

No import from the project or the test suite: this file runs alone, under any Python the wheel fits.
"""
import inspect
import json
import re
import sys

FORMAT = 1
PREFIXES = ("tensorrt_bindings.tensorrt.", "tensorrt.tensorrt.", "tensorrt_bindings.", "tensorrt.")
PYBIND_METHOD_TYPES = ("instancemethod", "builtin_function_or_method")
KEPT_DUNDERS = {"__init__", "__getitem__", "__setitem__", "__len__", "__eq__", "__ne__", "__repr__", "__str__",
                "__int__", "__index__", "__hash__", "__iter__", "__contains__", "__bool__", "__enter__", "__exit__",
                "__del__", "__call__"}


def strip(type_text):
    for prefix in PREFIXES:
        type_text = type_text.replace(prefix, "")
    return type_text.strip()


def split_top(text, sep=","):
    """Split on `sep` outside brackets, quotes and <...> default reprs."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "<":
            depth += 1
        elif char == ">" and text[i - 1:i] != "-":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_param(text):
    if text.startswith("**"):
        return {"name": text[2:].split(":")[0], "kind": "var_keyword"}
    if text.startswith("*"):
        return {"name": text[1:].split(":")[0], "kind": "var_positional"}
    default = None
    has_default = False
    parts = split_top(text, "=")
    if len(parts) > 1:
        text, default, has_default = parts[0], "=".join(parts[1:]).strip(), True
    name, _, type_text = text.partition(":")
    return {"name": name.strip(), "type": strip(type_text) if type_text else "object",
            "default": default, "has_default": has_default}


def parse_signature(line, name):
    """'name(a: int, b: X = None) -> Y' -> {'params': [...], 'returns': 'Y', 'text': line}."""
    match = re.match(r"^\s*(?:\d+\.\s*)?" + re.escape(name) + r"\((.*)\)\s*(?:->\s*(.+))?$", line.strip())
    if not match:
        return None
    params = [parse_param(p) for p in split_top(match.group(1))]
    return {"params": params, "returns": strip(match.group(2) or "None"), "text": strip(line.strip())}


def signatures_from_doc(doc, name):
    lines = (doc or "").splitlines()
    if not lines:
        return []
    if len(lines) > 1 and lines[1].strip() == "Overloaded function.":
        found = []
        for line in lines[2:]:
            if re.match(r"^\d+\.\s*" + re.escape(name) + r"\(", line):
                parsed = parse_signature(line, name)
                if parsed:
                    found.append(parsed)
        return found
    parsed = parse_signature(lines[0], name)
    return [parsed] if parsed else []


def python_signature(func):
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = []
    for p in signature.parameters.values():
        kind = {p.VAR_POSITIONAL: "var_positional", p.VAR_KEYWORD: "var_keyword"}.get(p.kind)
        if kind:
            params.append({"name": p.name, "kind": kind})
            continue
        has_default = p.default is not p.empty
        params.append({"name": p.name, "type": "object", "default": repr(p.default) if has_default else None,
                       "has_default": has_default})
    return {"params": params, "returns": "object", "text": f"{func.__name__}{signature}", "python": True}


def deprecated_ivars(cls):
    found = set()
    for match in re.finditer(r":ivar\s+(\w+):([^\n]*)", cls.__doc__ or ""):
        if "[DEPRECATED]" in match.group(2):
            found.add(match.group(1))
    return found


def method_record(name, value, bound_self):
    if type(value).__name__ in PYBIND_METHOD_TYPES or (callable(value) and not inspect.isfunction(value)):
        overloads = signatures_from_doc(getattr(value, "__doc__", ""), name)
    else:
        overloads = []
    if not overloads and (inspect.isfunction(value) or inspect.ismethod(value)):
        python = python_signature(value)
        overloads = [python] if python else []
    if not overloads:
        return None
    if bound_self:
        for overload in overloads:  # the instance is bound at call time: drop the `self` parameter
            if overload["params"] and overload["params"][0].get("name") in ("self", "arg0"):
                overload["params"] = overload["params"][1:]
    doc = getattr(value, "__doc__", "") or ""
    return {"overloads": overloads, "deprecated": "[DEPRECATED]" in doc}


def value_record(value, enums):
    cls = type(value)
    if cls in enums:
        return {"kind": "enum_member", "enum": enums[cls], "member": value.name}
    if isinstance(value, type):
        return {"kind": "class", "name": getattr(value, "__qualname__", value.__name__)}
    if isinstance(value, (bool, int, float, str)):
        return {"kind": "value", "type": cls.__name__, "value": value}
    if inspect.ismodule(value):
        return {"kind": "module", "name": value.__name__}
    return {"kind": "object", "type": cls.__name__}


def is_ours(value, module_name):
    return isinstance(value, type) and str(getattr(value, "__module__", "")).startswith(module_name)


def record_class(cls, module_name, enums):
    is_enum = hasattr(cls, "__members__") and cls in enums
    entry = {"bases": [b.__qualname__ for b in cls.__bases__ if is_ours(b, module_name)],
             "methods": {}, "properties": {}, "attributes": {}, "enum": None}
    if is_enum:
        entry["enum"] = {name: int(member) for name, member in cls.__members__.items()}
    entry["deprecated"] = (cls.__doc__ or "").strip().startswith("[DEPRECATED]")
    init = cls.__dict__.get("__init__")
    entry["constructible"] = bool(init is not None and signatures_from_doc(getattr(init, "__doc__", ""), "__init__"))
    deprecated = deprecated_ivars(cls)
    for name, raw in cls.__dict__.items():
        if name.startswith("__") and name not in KEPT_DUNDERS:
            continue
        if is_enum and name in cls.__members__:
            continue
        if is_enum and name in ("name", "value"):
            continue  # every enum has these: the stand-in gives them to all
        if isinstance(raw, property):
            getter = signatures_from_doc("x" + (raw.fget.__doc__ or "").split("\n")[0].strip(), "x") \
                if raw.fget else []
            setter = signatures_from_doc("x" + (raw.fset.__doc__ or "").split("\n")[0].strip(), "x") \
                if raw.fset else []
            entry["properties"][name] = {
                "type": getter[0]["returns"] if getter else "object",
                "setter": raw.fset is not None,
                "setter_type": setter[0]["params"][1]["type"] if setter and len(setter[0]["params"]) > 1 else None,
                "deprecated": name in deprecated}
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            record = method_record(name, getattr(cls, name), False)
            if record:
                record["static"] = True
                entry["methods"][name] = record
            continue
        if type(raw).__name__ == "pybind11_static_property" or not callable(raw) or isinstance(raw, type):
            try:
                value = getattr(cls, name)
            except Exception:
                continue
            entry["attributes"][name] = value_record(value, enums)
            continue
        record = method_record(name, raw, True)
        if record is None:
            continue
        entry["methods"][name] = record
        if name in deprecated:
            record["deprecated"] = True
    return entry


def walk_classes(module, module_name):
    found = {}
    pending = [v for v in vars(module).values() if is_ours(v, module_name)]
    while pending:
        cls = pending.pop()
        name = cls.__qualname__
        if name in found:
            continue
        found[name] = cls
        pending.extend(v for v in cls.__dict__.values() if is_ours(v, module_name))
    return found


def record(module):
    module_name = module.__name__
    classes = walk_classes(module, module_name)
    enums = {cls: name for name, cls in classes.items() if hasattr(cls, "__members__")}
    out = {"format": FORMAT, "version": str(module.__version__),
           "python": "%d.%d" % sys.version_info[:2], "classes": {}, "module": {"functions": {}, "attributes": {}}}
    for name in sorted(classes):
        out["classes"][name] = record_class(classes[name], module_name, enums)
    for name, value in sorted(vars(module).items()):
        if name.startswith("__") and name != "__version__":
            continue
        if is_ours(value, module_name):
            out["module"]["attributes"][name] = {"kind": "class", "name": value.__qualname__}
        elif callable(value) and not isinstance(value, type) and not inspect.ismodule(value):
            entry = method_record(name, value, False)
            if entry:
                out["module"]["functions"][name] = entry
        else:
            out["module"]["attributes"][name] = value_record(value, enums)
    return out


def main(argv):
    wheel_dir, target = argv[1], argv[2]
    sys.path.insert(0, wheel_dir)
    import tensorrt_bindings  # noqa: E402  (the real module; its libraries are the stubs)

    data = record(tensorrt_bindings)
    with open(target, "w") as handle:
        json.dump(data, handle, indent=0, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
