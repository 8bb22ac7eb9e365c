"""The Python surface of one TensorRT version, read from its real bindings wheel (no import).

The extension `tensorrt_bindings/tensorrt.so` cannot be imported here (its libraries are stubs
that download from NVIDIA), but its machine code still says which names it registers: every
pybind11 `class_`, `def`, `def_property`, `enum_.value` passes its name as a pointer to a string,
loaded with a RIP-relative `lea`.  Disassembling `.text` (capstone) and reading the string each
`lea` points at (pyelftools) gives the names in registration order; reading from the pointer to
the next NUL also finds names the linker merged into the tail of a longer string (`INT8` inside
`UINT8`), which a plain `strings` listing misses.

Scoping names to classes:
  * a CamelCase string starts a class's segment (`class_<T>(m, "Name")`); a class's names are the
    union of its segments (8.6 and 10.x register each enum this way too);
  * 11.x registers enums as pybind11 `native_enum` whose name is loaded elsewhere, so their
    members follow the previous class without a header: an enum without a header segment takes
    the run of UPPER_CASE names around the members it had in the newest version that had headers
    (`anchors`), extended while the neighbours are not another enum's.
Names of other classes are checked against the whole version (class scoping by code order is
only reliable for enums: 10.7+ emits some methods away from their class's segment).
Names defined in the wheel's Python `__init__.py` (`__version__`, `nptype`) are module names.
Limitation (said in docs/tensorrt_api.md): a class segment also holds its methods' keyword
argument names, so `obj.flag` would pass where `flag` is only an argument.
"""
from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

SURFACE_FORMAT = 1  # bump when the reading rules change: cached surfaces are re-read
CLASS_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")
LEA = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")


@dataclass
class Surface:
    version: str
    module: Set[str] = field(default_factory=set)  # every name the extension or __init__.py defines
    classes: Dict[str, Set[str]] = field(default_factory=dict)  # class / enum -> its names
    headerless_enums: Set[str] = field(default_factory=set)  # enums scoped by anchors (11.x layout)

    def has_class(self, name: str) -> bool:
        return name in self.classes

    def members(self, name: str) -> Set[str]:
        return self.classes.get(name, set())

    def is_enum(self, name: str) -> bool:
        return name in self.headerless_enums or _is_enum(self.members(name))

    def has(self, owner: Optional[str], name: str) -> bool:
        """Whether `owner.name` (owner None: the module) exists in this version.

        Enum members are scoped to their enum (BuilderFlag.INT8 is gone in 11.0 while DataType.INT8
        stays); other classes' names are checked against every name the version registers, because
        newer builds emit methods away from their class (see the module docstring)."""
        if owner is None:
            return name in self.module or name in self.classes
        if owner not in self.classes:
            return False
        if self.is_enum(owner) and UPPER.match(name):
            return name in self.members(owner)
        return name in self.module or name in self.classes

    def to_json(self) -> dict:
        return {"format": SURFACE_FORMAT, "version": self.version, "module": sorted(self.module),
                "classes": {k: sorted(v) for k, v in sorted(self.classes.items())},
                "headerless_enums": sorted(self.headerless_enums)}

    @classmethod
    def from_json(cls, data: dict) -> "Surface":
        return cls(version=data["version"], module=set(data["module"]),
                   classes={k: set(v) for k, v in data["classes"].items()},
                   headerless_enums=set(data.get("headerless_enums", ())))


def referenced_strings(so_bytes: bytes) -> List[str]:
    """Strings the code loads with a RIP-relative lea, in code order (tail-merged names included)."""
    import capstone
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(so_bytes))
    text, rodata = elf.get_section_by_name(".text"), elf.get_section_by_name(".rodata")
    code, data = text.data(), rodata.data()
    base = rodata["sh_addr"]
    disassembler = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    disassembler.skipdata = True
    found = []
    for address, size, mnemonic, operands in disassembler.disasm_lite(code, text["sh_addr"]):
        if mnemonic != "lea":
            continue
        match = LEA.search(operands)
        if not match:
            continue
        offset = int(match.group(2), 0)
        target = address + size + (-offset if match.group(1) == "-" else offset) - base
        if 0 <= target < len(data):
            end = data.find(b"\0", target)
            raw = data[target:end]
            if 0 < len(raw) < 200 and all(32 <= c < 127 or c in (9, 10) for c in raw):
                found.append(raw.decode("ascii"))
    return found


def python_names(source: str) -> Set[str]:
    """Top-level names a wheel's __init__.py defines (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def segments(strings: List[str]) -> Dict[str, List[List[str]]]:
    """CamelCase header -> list of segments (identifier names after it, until the next header)."""
    out: Dict[str, List[List[str]]] = {}
    current: Optional[List[str]] = None
    for text in strings:
        if CLASS_NAME.match(text):
            current = []
            out.setdefault(text, []).append(current)
        elif current is not None and IDENTIFIER.match(text):
            current.append(text)
    return out


def _enum_members(names: List[str]) -> List[str]:
    return [n for n in names if UPPER.match(n)]


def read_surface(wheel_path: str, version: str, reference: Optional["Surface"] = None) -> Surface:
    """The Surface of the bindings wheel at `wheel_path`.

    `reference`: the surface of a version with enum headers (10.x), used to place the members of
    enums that this version registers without a header (11.x)."""
    with zipfile.ZipFile(wheel_path) as wheel:
        so = next(n for n in wheel.namelist() if n.endswith("/tensorrt.so") or re.search(r"/tensorrt[^/]*\.so$", n))
        so_bytes = wheel.read(so)
        init = next((n for n in wheel.namelist() if n.endswith("tensorrt_bindings/__init__.py")), None)
        init_source = wheel.read(init).decode("utf-8", "replace") if init else ""
    strings = referenced_strings(so_bytes)
    surface = Surface(version=version)
    surface.module = {s for s in strings if IDENTIFIER.match(s)} | python_names(init_source)
    for name, parts in segments(strings).items():
        surface.classes[name] = {n for part in parts for n in part}
    if reference is not None:
        _place_headerless_enums(surface, strings, reference)
    return surface


def _place_headerless_enums(surface: Surface, strings: List[str], reference: Surface) -> None:
    ref_enums = {name: members for name, members in reference.classes.items()
                 if members and name not in reference.headerless_enums and _is_enum(members)}
    owner: Dict[str, Set[str]] = {}
    for name, members in ref_enums.items():
        for member in members:
            owner.setdefault(member, set()).add(name)
    sequence = [s for s in strings if IDENTIFIER.match(s)]
    for name, ref_members in ref_enums.items():
        if name in surface.classes and _is_enum(surface.classes[name]):
            continue  # this version registered it with a header
        anchors = [i for i, s in enumerate(sequence) if s in ref_members and owner.get(s) == {name}]
        if not anchors:
            continue
        start, end = min(anchors), max(anchors)
        while start > 0 and UPPER.match(sequence[start - 1]) and name in owner.get(sequence[start - 1], {name}):
            start -= 1
        while end + 1 < len(sequence) and UPPER.match(sequence[end + 1]) and name in owner.get(sequence[end + 1], {name}):
            end += 1
        if end - start > 4 * len(ref_members) + 8:
            continue  # anchors scattered through the code: not an enum block, leave it unknown
        surface.classes[name] = set(surface.classes.get(name, set())) | set(_enum_members(sequence[start:end + 1]))
        surface.headerless_enums.add(name)


def _is_enum(members: Set[str]) -> bool:
    upper = [m for m in members if UPPER.match(m)]
    return len(upper) >= max(1, len(members) // 2)


def save(surface: Surface, path: str) -> None:
    with open(path + ".tmp", "w") as handle:
        json.dump(surface.to_json(), handle, indent=0)
    import os
    os.replace(path + ".tmp", path)
