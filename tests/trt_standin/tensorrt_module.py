"""Generate a STAND-IN `tensorrt` module for one TensorRT version from its recorded API (api.py).

Not TensorRT: it builds no kernels and runs no network.  Every class, method, property, constant
and enum member of the real version is there, and nothing else; each call goes through pybind11's
rules on the real signature before it reaches the stand-in's behaviour (behaviour.py).  What fails,
always with the version in the message:
  * a name the version lacks (module, class, instance or enum member);
  * a call pybind11 would refuse: wrong argument count, an unknown or auto-named (`arg0`) keyword, a
    value of the wrong type (str for int, float for int, an enum of another type, None where the
    type is not optional, a Path for a str), or a class without a constructor instantiated;
  * a property called like a method (its int / float / str / list value refuses the call), a method
    or a read-only property assigned, an unknown attribute set on a TensorRT object;
  * a subclass (ILogger, IProgressMonitor, calibrators) whose `__init__` does not call the base's;
  * a name the real bindings mark deprecated warns (DeprecationWarning) when used.
The behaviours' own results are checked against the recorded return types (a `Dims`, an
`IHostMemory`, `None` where TensorRT returns a null pointer), so the stand-in cannot drift either.
"""
from __future__ import annotations

import array
import threading
import types
import warnings
from typing import Dict, Optional

from .api import Api, check_value, normalize
from .behaviour import make_behaviours, module_behaviour


class StandinAccessLog:
    """(owner, name) pairs the project touched, for the API table's cross-check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.used = set()

    def add(self, owner, name):
        with self.lock:
            self.used.add((owner, name))


class _CallGuard:
    """Mixed into a property's int / float / str / list value: calling it says it is a property."""

    def __call__(self, *args, **kwargs):
        raise TypeError(self._standin_message)


def _guard(value, message):
    for base in (int, float, str, list):
        if type(value) is base:
            guarded = type(f"property_{base.__name__}", (_CallGuard, base), {})(value)
            guarded._standin_message = message
            return guarded
    return value


class _HostBuffer(array.array):
    """IHostMemory's bytes: the buffer protocol (bytes(), file.write, memoryview) as the real object has."""

    def __new__(cls, *args, **kwargs):
        return array.array.__new__(cls, "B")


def build_module(api: Api, access_log: Optional[StandinAccessLog] = None, plugins=("EfficientNMS_TRT",),
                 dla_cores: int = 2) -> types.ModuleType:
    """The stand-in `tensorrt` of `api.version`."""
    version = api.version
    log = access_log or StandinAccessLog()
    classes: Dict[str, type] = {}
    generated = set()

    def missing(owner, name):
        where = f"{owner}.{name}" if owner else name
        return AttributeError(f"TensorRT {version} has no {where} (stand-in generated from the real "
                              f"tensorrt {version} bindings)")

    def resolve(type_text):
        return classes.get(normalize(type_text))

    def public_owner(cls, name, instance_dict=None):
        """The TensorRT class defining `name` for lookups on `cls`, '' for a user's own name; raises if absent."""
        if instance_dict is not None and name in instance_dict:
            return ""
        for klass in type.__getattribute__(cls, "__mro__"):
            if klass in generated:
                names = type.__getattribute__(klass, "_trt_names")
                if name in names:
                    return names[name]
                raise missing(type.__getattribute__(klass, "_trt_name"), name)
            if name in type.__getattribute__(klass, "__dict__"):
                return ""
        raise AttributeError(name)

    class StandinType(type):
        def __getattribute__(cls, name):
            if name[:1] != "_":
                owner = public_owner(cls, name)
                if owner:
                    log.add(owner, name)
            return type.__getattribute__(cls, name)

        def __call__(cls, *args, **kwargs):
            obj = type.__call__(cls, *args, **kwargs)
            if cls not in generated and not object.__getattribute__(obj, "__dict__").get("_trt_initialized"):
                base = next(k for k in cls.__mro__ if k in generated)
                raise TypeError(f"TensorRT {version}: {type.__getattribute__(base, '_trt_name')}.__init__() must be "
                                f"called when overriding __init__ (pybind11 refuses the object otherwise)")
            return obj

    class StandinObject(metaclass=StandinType):
        _trt_name = "object"
        _trt_names: Dict[str, str] = {}

        def __getattribute__(self, name):
            if name[:1] != "_":
                cls = type(self)
                own = None if cls in generated else object.__getattribute__(self, "__dict__")
                owner = public_owner(cls, name, own)
                if owner:
                    log.add(owner, name)
            return object.__getattribute__(self, name)

        def __setattr__(self, name, value):
            if name[:1] != "_" and type(self) in generated:
                owner_name = type.__getattribute__(type(self), "_trt_name")
                found = api.member(owner_name, name)
                if found is None:  # pybind11 objects take no new attributes either
                    raise missing(owner_name, name)
                if found[0] != "property":
                    raise AttributeError(f"TensorRT {version}: {owner_name}.{name} is a {found[0]}, not a settable "
                                         f"property; it cannot be assigned")
                log.add(found[1], name)  # a property set is a use of it too
            object.__setattr__(self, name, value)

    ctx = types.SimpleNamespace(version=version, api=api, classes=classes, plugins=list(plugins),
                                dla_cores=dla_cores, state={"plugin_logger": None, "global_logger": None})

    def new(name, **state):
        """A TensorRT object made by TensorRT itself (no public constructor involved)."""
        cls = classes[name]
        obj = cls.__new__(cls) if issubclass(cls, array.array) else object.__new__(cls)
        object.__setattr__(obj, "_trt_initialized", True)
        for key, value in state.items():
            object.__setattr__(obj, key, value)
        return obj

    ctx.new = new
    behaviours = make_behaviours(ctx)

    def check_return(where, returns, value):
        problem = check_value(returns, value, resolve, none_ok=resolve(returns) is not None)
        if problem:
            raise AssertionError(f"stand-in bug: {where} returned {type(value).__name__}, but TensorRT {version}'s "
                                 f"returns {returns} ({problem})")
        return value

    def deprecation(where):
        warnings.warn(f"{where} is deprecated in TensorRT {version} (stand-in: the real bindings warn)",
                      DeprecationWarning, stacklevel=3)

    def make_method(owner, name, record, behaviour):
        where = f"{owner}.{name}"
        overloads = record["overloads"]
        operator = name in ("__eq__", "__ne__")
        impl = getattr(behaviour, name, None) if behaviour is not None else None
        if impl is not None:
            check_behaviour_signature(where, impl, overloads)

        def call(self, args, kwargs):
            try:
                chosen, bound = api.bind(where, overloads, args, kwargs, resolve)
            except TypeError:
                if operator:
                    return NotImplemented
                raise
            if name == "__init__":
                if not api.classes[owner]["constructible"]:
                    raise TypeError(f"TensorRT {version}: {owner}: No constructor defined!")
                object.__setattr__(self, "_trt_initialized", True)
            if record.get("deprecated") or (name == "__init__" and api.classes[owner].get("deprecated")):
                deprecation(where)
            if impl is None:
                if name in ("__init__", "__del__"):
                    return None
                raise NotImplementedError(f"stand-in tensorrt {version}: {where} exists in TensorRT {version} but "
                                          f"the stand-in has no behaviour for it (add it to tests/trt_standin/behaviour.py)")
            result = impl(**bound) if self is None else impl(self, **bound)
            return result if operator else check_return(where, overloads[chosen]["returns"], result)

        if record.get("static"):
            def function(*args, **kwargs):
                return call(None, args, kwargs)
        else:
            def function(self, *args, **kwargs):
                return call(self, args, kwargs)
        function.__name__ = name
        function.__qualname__ = where
        return staticmethod(function) if record.get("static") else function

    def check_behaviour_signature(where, impl, overloads):
        """A behaviour takes the real parameter names (of one overload, or a superset with defaults)."""
        import inspect

        params = [p for p in inspect.signature(impl).parameters.values() if p.name != "self"]
        if any(p.kind == p.VAR_KEYWORD for p in params):
            return
        names = {p.name for p in params}
        required = {p.name for p in params if p.default is p.empty}
        for overload in overloads:
            wanted = {p["name"] for p in overload["params"] if not p.get("kind")}
            if wanted <= names and required <= wanted:
                return
        raise AssertionError(f"stand-in bug: the behaviour of {where} takes ({', '.join(sorted(names))}) but TensorRT "
                             f"{version}'s signatures are: " + "; ".join(o["text"] for o in overloads))

    def make_property(owner, name, record, behaviour):
        where = f"{owner}.{name}"
        impl = getattr(behaviour, name, None) if behaviour is not None else None

        def fget(self):
            if record.get("deprecated"):
                deprecation(where)
            if isinstance(impl, property) and impl.fget is not None:
                value = impl.fget(self)
            else:
                stored = object.__getattribute__(self, "__dict__").get("_props", {})
                if name not in stored:
                    raise NotImplementedError(f"stand-in tensorrt {version}: reading {where} has no behaviour "
                                              f"(add it to tests/trt_standin/behaviour.py)")
                value = stored[name]
            check_return(where, record["type"], value)
            return _guard(value, f"TensorRT {version}: {where} is a property, not a method: use .{name} without ()")

        def fset(self, value):
            if not record["setter"]:
                raise AttributeError(f"TensorRT {version}: {where} is read-only")
            problem = check_value(record["setter_type"] or record["type"], value, resolve, none_ok=True)
            if problem:
                raise TypeError(f"TensorRT {version}: {where} = {value!r}: incompatible value ({problem})")
            if record.get("deprecated"):
                deprecation(where)
            if isinstance(impl, property) and impl.fset is not None:
                impl.fset(self, value)
            else:
                props = object.__getattribute__(self, "__dict__").setdefault("_props", {})
                props[name] = value

        return property(fget, fset)

    # -- classes, bases first ------------------------------------------------------------------------
    order = []

    def visit(name):
        if name in order or name not in api.classes:
            return
        for base in api.classes[name]["bases"]:
            visit(base)
        order.append(name)

    for name in sorted(api.classes):
        visit(name)

    enum_base = make_enum_base(version)
    for name in order:
        entry = api.classes[name]
        behaviour = behaviours.get(name)
        namespace = {"_trt_name": name, "__module__": "tensorrt", "__qualname__": name}
        names = {}
        for base in entry["bases"]:
            names.update(type.__getattribute__(classes[base], "_trt_names"))
        is_enum = entry["enum"] is not None
        for method_name, record in entry["methods"].items():
            names[method_name] = name
            if is_enum and method_name.startswith("__"):
                continue  # the enum base implements pybind11 enums' dunders
            namespace[method_name] = make_method(name, method_name, record, behaviour)
        for prop_name, record in entry["properties"].items():
            names[prop_name] = name
            namespace[prop_name] = make_property(name, prop_name, record, behaviour)
        for attr_name in entry["attributes"]:
            names[attr_name] = name
        if "__init__" not in namespace and not is_enum:
            namespace["__init__"] = make_method(name, "__init__", {"overloads": [{"params": [], "returns": "None",
                                                                                  "text": f"{name}()"}]}, None)
        bases = tuple(classes[b] for b in entry["bases"]) or (StandinObject,)
        if is_enum:
            bases = (enum_base,) + bases
            for member in entry["enum"]:
                names[member] = name
            names.update({"name": name, "value": name, "__members__": name})
        if name == "IHostMemory":
            bases = bases + (_HostBuffer,)  # after StandinObject: its strict attribute lookup comes first
            for dunder in ("__len__", "__iter__", "__getitem__", "__setitem__", "__delitem__", "__contains__",
                           "__add__", "__mul__", "__iadd__", "__imul__", "__reversed__"):
                if dunder not in entry["methods"]:
                    namespace[dunder] = _refuse(version, name, dunder)
            namespace["__eq__"] = lambda self, other: self is other
            namespace["__hash__"] = lambda self: id(self)
        namespace["_trt_names"] = names
        if entry["attributes"].get("__hash__", {}).get("type") == "NoneType":
            namespace["__hash__"] = None
        cls = StandinType(name.split(".")[-1], bases, namespace)
        generated.add(cls)
        classes[name] = cls
    # enum members and class constants, once every class exists
    for name in order:
        entry, cls = api.classes[name], classes[name]
        if entry["enum"] is not None:
            members = {}
            for member, value in entry["enum"].items():
                obj = object.__new__(cls)
                object.__setattr__(obj, "_trt_initialized", True)
                object.__setattr__(obj, "_name", member)
                object.__setattr__(obj, "_value", int(value))
                type.__setattr__(cls, member, obj)
                members[member] = obj
            type.__setattr__(cls, "__members__", members)
    for name in order:
        for attr_name, record in api.classes[name]["attributes"].items():
            if attr_name.startswith("__"):
                continue
            type.__setattr__(classes[name], attr_name, _value_of(record, classes))

    # -- the module ----------------------------------------------------------------------------------
    class StandinModule(types.ModuleType):
        def __getattribute__(self, name):
            value = types.ModuleType.__getattribute__(self, name)  # absent names go to __getattr__
            if name[:1] != "_":
                log.add(None, name)
            return value

    module = StandinModule("tensorrt", f"STAND-IN tensorrt {version} (generated from the real bindings' API)")
    functions = module_behaviour(ctx)
    for name, record in api.functions.items():
        setattr(module, name, make_method("tensorrt", name, dict(record, static=True), functions).__func__)
    for name, record in api.attributes.items():
        setattr(module, name, _value_of(record, classes))

    def module_getattr(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise missing(None, name)

    module.__getattr__ = module_getattr
    module._standin_api = api
    module._standin_access = log
    module._standin_state = ctx.state
    ctx.module = module
    return module


def _refuse(version, owner, dunder):
    def refuse(self, *args, **kwargs):
        raise TypeError(f"TensorRT {version}: {owner} does not support {dunder} (use bytes(obj) or memoryview(obj))")
    return refuse


def _value_of(record, classes):
    kind = record["kind"]
    if kind == "class":
        return classes[record["name"]]
    if kind == "enum_member":
        return type.__getattribute__(classes[record["enum"]], "__members__")[record["member"]]
    if kind == "value":
        return record["value"]
    if kind == "module":
        import importlib

        try:
            return importlib.import_module(record["name"])
        except ImportError:
            return types.ModuleType(record["name"])
    return None


def make_enum_base(version):
    """pybind11 enum behaviour: members compare by type and value, int() / index(), name, value."""

    class EnumBase:
        def __init__(self, value):
            for member in type(self).__members__.values():
                if member._value == int(value):
                    object.__setattr__(self, "_name", member._name)
                    break
            else:
                object.__setattr__(self, "_name", "???")
            object.__setattr__(self, "_value", int(value))
            object.__setattr__(self, "_trt_initialized", True)

        @property
        def name(self):
            return self._name

        @property
        def value(self):
            return self._value

        def __int__(self):
            return self._value

        __index__ = __int__

        def __eq__(self, other):
            return type(other) is type(self) and other._value == self._value

        def __ne__(self, other):
            return not self.__eq__(other)

        def __hash__(self):
            return hash((type(self).__name__, self._value))

        def __repr__(self):
            return f"<{type(self).__name__}.{self._name}: {self._value}>"

        def __str__(self):
            return f"{type(self).__name__}.{self._name}"

    return EnumBase
