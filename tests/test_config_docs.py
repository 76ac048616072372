"""docs/config.md agrees with the config dataclasses, so the reference cannot drift.

The fields come from the code: ``RadarConfig`` walked recursively through its section
dataclasses, ``NextKeyConfig`` (the next-key detectors' shared keys, under the
placeholder ``models.NAME``) and the ``config_class`` of every built-in detector the
plugin manager registers (``models.DETECTOR``). Each must be a row of a table in
docs/config.md with the same type and default, and every row must be such a field.

Ranges are checked against behaviour, not against a copy of the numbers:

* bounds declared through ``SectionChecks`` helpers (``check_number``,
  ``check_positive``, ``check_dropout``) are recorded while each section is built with
  its defaults and must equal the documented range exactly;
* every other documented bound is probed: its edge and a value just inside are
  accepted, a value just outside is rejected; a number documented without a range
  must accept -1 and a large value;
* documented choices must each be accepted, and the values the config's own error
  lists for a bad value must be exactly those; a string documented without choices
  must accept any value; ``ensemble.method`` and ``severity.scorer``, checked when the
  ensemble is built, must list the built-in registered scorers of their kind.

The range of a dict or list key (``ensemble.weights``, ``detectors``) is prose and is
not checked.

Only the public API (``from radar import ...``) is imported, so module moves inside
``radar`` do not break this test.
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from radar import (
    Combiner,
    ConfigError,
    NextKeyConfig,
    RadarConfig,
    SectionChecks,
    SeverityScorer,
    build_section,
    load_config,
    make_plugin_manager,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"
HEADER = ["Key", "Type", "Default", "Range", "Meaning"]
BUILTIN = "radar_plugins."          # the package the plugins/ folder installs as
# Choice keys checked when the ensemble is built, against the registered scorers.
RUNTIME_CHOICES = {"ensemble.method": Combiner, "severity.scorer": SeverityScorer}
NONE = "—"


# ------------------------------------------------------------------ the code's fields

@dataclasses.dataclass(frozen=True)
class Field:
    key: str            # dotted, as documented
    root: type          # the dataclass a probe builds (RadarConfig or a model section)
    prefix: str         # that root's own key prefix ("" for RadarConfig)
    owner: type         # the dataclass that declares the field
    name: str
    type: str
    default: Any

    @property
    def path(self) -> list[str]:
        """The field's keys below ``root``."""
        rest = self.key[len(self.prefix) + 1:] if self.prefix else self.key
        return rest.split(".")


def type_text(tp: Any) -> str:
    """An annotation as written in the source (``from __future__ import annotations``
    keeps it a string), else rendered the same way."""
    if isinstance(tp, str):
        return " ".join(tp.split())
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("NoneType", "None")


def default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise AssertionError(f"config field {field.name} has no default")


def walk(cls: type, root: type, prefix: str, key: str = "") -> list[Field]:
    """The leaf fields of ``cls``, recursing into fields whose default is a dataclass."""
    found = []
    for field in dataclasses.fields(cls):
        dotted = f"{key}.{field.name}" if key else field.name
        default = default_of(field)
        if dataclasses.is_dataclass(default):
            found += walk(type(default), root, prefix, dotted)
        else:
            found.append(Field(dotted, root, prefix, cls, field.name, type_text(field.type),
                               default))
    return found


def builtin_detectors() -> dict[str, type]:
    """name -> config_class of the detectors this repository ships."""
    return {name: cls.config_class for name, cls in make_plugin_manager().detectors().items()
            if cls.__module__.startswith(BUILTIN)
            and dataclasses.is_dataclass(cls.config_class)}


def code_fields() -> dict[str, Field]:
    roots = [(RadarConfig, ""), (NextKeyConfig, "models.NAME")]
    roots += [(config, f"models.{name}") for name, config in sorted(builtin_detectors().items())]
    fields = []
    for root, prefix in roots:
        fields += walk(root, root, prefix, prefix)
    return {field.key: field for field in fields}


# ------------------------------------------------------------------ the document's rows

@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    range: str
    line: int


def cells(line: str) -> list[str]:
    """A table row's cells; ``\\|`` is a pipe inside a cell."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "`" else text


def doc_rows(text: str | None = None) -> dict[str, Row]:
    """Every row of every table whose header is :data:`HEADER`."""
    lines = (DOC.read_text(encoding="utf-8") if text is None else text).splitlines()
    rows: dict[str, Row] = {}
    in_table = False
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            in_table = False
            continue
        row = cells(line)
        if row == HEADER:
            in_table = True
            continue
        if not in_table or set("".join(row)) <= set("-: "):
            continue
        assert len(row) == len(HEADER), f"docs/config.md:{number}: {len(row)} cells: {line}"
        key = unquote(row[0])
        assert key not in rows, f"docs/config.md:{number}: {key} documented twice"
        rows[key] = Row(key, unquote(row[1]), unquote(row[2]), row[3], number)
    return rows


@pytest.fixture(scope="module")
def fields() -> dict[str, Field]:
    return code_fields()


@pytest.fixture(scope="module")
def rows() -> dict[str, Row]:
    return doc_rows()


def report(problems: list[str]) -> str:
    return "docs/config.md disagrees with the code:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------ keys, types, defaults

def test_the_walk_finds_every_section(fields):
    """A guard on the walk itself: the sections and detectors are all there."""
    sections = {key.split(".")[0] for key in fields if "." in key}
    assert {"training", "data", "detection", "ensemble", "severity", "source",
            "models"} <= sections
    assert {"logbert", "deeplog", "lstm", "tcn", "pca"} <= set(builtin_detectors())
    assert len(fields) >= 100


def test_every_field_is_documented_and_every_documented_key_exists(fields, rows):
    missing = sorted(set(fields) - set(rows))
    unknown = sorted(set(rows) - set(fields))
    problems = [f"{key}: not documented (a field of {fields[key].owner.__name__})"
                for key in missing]
    problems += [f"{key} (line {rows[key].line}): no such config field" for key in unknown]
    assert not problems, report(problems)


def parse_default(text: str, expected: Any) -> Any:
    value = yaml.safe_load(text)
    if isinstance(expected, float) and not isinstance(value, bool) \
            and isinstance(value, (int, str)):
        value = float(value)            # PyYAML reads 2e-5 as a string, 1 as an int
    return value


def same_value(documented: Any, actual: Any) -> bool:
    if type(documented) is not type(actual):
        return False
    if isinstance(actual, float):
        return math.isclose(documented, actual, rel_tol=1e-12, abs_tol=0.0)
    return documented == actual


def test_types_and_defaults_match(fields, rows):
    problems = []
    for key in sorted(set(fields) & set(rows)):
        field, row = fields[key], rows[key]
        if " ".join(row.type.split()) != field.type:
            problems.append(f"{key}: type {row.type!r} documented, {field.type!r} in code")
        try:
            documented = parse_default(row.default, field.default)
        except (yaml.YAMLError, ValueError) as exc:
            problems.append(f"{key}: default {row.default!r} is not a YAML value ({exc})")
            continue
        if not same_value(documented, field.default):
            problems.append(f"{key}: default {row.default!r} documented, "
                            f"{field.default!r} in code")
    assert not problems, report(problems)


# ------------------------------------------------------------------ ranges

@dataclasses.dataclass(frozen=True)
class Bounds:
    low: float | None = None
    low_closed: bool = True
    high: float | None = None
    high_closed: bool = True

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return NONE
        return (f"{'[' if self.low_closed else '('}{self.low}, "
                f"{self.high}{']' if self.high_closed else ')'}")


CHOICE = re.compile(r"`([^`]+)`")
ONE_SIDED = re.compile(r"^`?(≥|>=|>|≤|<=|<)\s*([^`]+)`?$")
INTERVAL = re.compile(r"^`?([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])`?$")


def bound_value(text: str, field: Field) -> float:
    """A number, or the name of a field of the same section (its default)."""
    try:
        return float(text)
    except ValueError:
        owner_default = default_of(next(f for f in dataclasses.fields(field.owner)
                                        if f.name == text))
        return float(owner_default)


def parse_bounds(text: str, field: Field) -> Bounds | None:
    """The documented numeric range, or None when ``text`` is not one."""
    text = text.strip()
    if text == NONE:
        return Bounds()
    match = ONE_SIDED.match(text)
    if match:
        sign, value = match[1], bound_value(match[2].strip(), field)
        closed = sign in ("≥", ">=", "≤", "<=")
        if sign in ("≥", ">=", ">"):
            return Bounds(low=value, low_closed=closed)
        return Bounds(high=value, high_closed=closed)
    match = INTERVAL.match(text)
    if match:
        return Bounds(bound_value(match[2], field), match[1] == "[",
                      bound_value(match[3], field), match[4] == "]")
    return None


def merge(bounds: Bounds, *, minimum=None, maximum=None, above=None, below=None) -> Bounds:
    """``bounds`` narrowed by one helper call's arguments."""
    low, low_closed, high, high_closed = dataclasses.astuple(bounds)
    for value, closed in ((minimum, True), (above, False)):
        if value is not None and (low is None or value > low or (value == low and not closed)):
            low, low_closed = float(value), closed
    for value, closed in ((maximum, True), (below, False)):
        if value is not None and (high is None or value < high or (value == high and not closed)):
            high, high_closed = float(value), closed
    return Bounds(low, low_closed, high, high_closed)


@pytest.fixture(scope="module")
def declared(fields) -> dict[tuple[type, str], Bounds]:
    """(section class, key) -> the bounds its ``SectionChecks`` helper calls declare,
    recorded while every section is built with its defaults."""
    found: dict[tuple[type, str], Bounds] = {}
    check_number, check_dropout = SectionChecks.check_number, SectionChecks.check_dropout

    def record(self, key, **bounds):
        found[type(self), key] = merge(found.get((type(self), key), Bounds()), **bounds)

    def number(self, key, **bounds):
        record(self, key, **bounds)
        return check_number(self, key, **bounds)

    def dropout(self, *keys):
        for key in keys:
            record(self, key, minimum=0.0, below=1.0)
        return check_dropout(self, *keys)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SectionChecks, "check_number", number)
        patch.setattr(SectionChecks, "check_dropout", dropout)
        for root in {field.root for field in fields.values()}:
            root()
    return found


def is_number(field: Field) -> bool:
    return isinstance(field.default, (int, float)) and not isinstance(field.default, bool) \
        or field.type in ("int | None", "float | None")


def is_int(field: Field) -> bool:
    return field.type.split(" |")[0] == "int"


def build_with(field: Field, value: Any) -> Any:
    """``field``'s root section built with ``value`` for it, the way a run builds it."""
    raw: Any = value
    for part in reversed(field.path):
        raw = {part: raw}
    return build_section(field.root, raw, field.prefix)


def accepts(field: Field, value: Any) -> bool:
    """Whether the config accepts ``value`` for ``field``."""
    try:
        build_with(field, value)
    except ConfigError:
        return False
    return True


def probes(bounds: Bounds, integer: bool) -> list[tuple[float, bool]]:
    """(value, accepted?) pairs at each documented edge."""
    pairs = []
    for edge, closed, outward in ((bounds.low, bounds.low_closed, -1),
                                  (bounds.high, bounds.high_closed, 1)):
        if edge is None:
            continue
        step = 1 if integer else 1e-6 * max(1.0, abs(edge))
        if closed:
            pairs += [(edge, True), (edge + outward * step, False)]
        else:
            pairs += [(edge, False), (edge - outward * step, True)]
    if bounds.low is None and bounds.high is None:
        pairs += [(-1, True), (10 ** 9, True)]
    return [(int(value) if integer else float(value), ok) for value, ok in pairs]


def test_numeric_ranges_match_the_checks(fields, rows, declared):
    problems = []
    for key in sorted(set(fields) & set(rows)):
        field, row = fields[key], rows[key]
        if not is_number(field):
            continue
        documented = parse_bounds(row.range, field)
        if documented is None:
            problems.append(f"{key}: range {row.range!r} is not {NONE}, '≥ N', '> N', "
                            "'≤ N', '< N' or an interval like [0, 1)")
            continue
        code = declared.get((field.owner, field.name))
        if code is not None:        # declared through SectionChecks: must be the same
            if code != documented:
                problems.append(f"{key}: range {documented} documented, {code} checked")
            continue
        for value, ok in probes(documented, is_int(field)):
            if accepts(field, value) != ok:
                problems.append(f"{key}: {value!r} is {'rejected' if ok else 'accepted'}, "
                                f"but the documented range is {row.range!r}")
    assert not problems, report(problems)


# ------------------------------------------------------------------ choices

BOGUS = "no-such-choice"
ONE_OF = re.compile(r"must be one of (.+?)[;,] got ")


def rejected_choices(field: Field) -> tuple[str, ...] | None:
    """The choices the config's error lists for a bad value; None if it is accepted."""
    try:
        build_with(field, BOGUS)
    except ConfigError as exc:
        match = ONE_OF.search(str(exc))
        assert match, f"{field.key}: {BOGUS!r} rejected without a list of choices: {exc}"
        return tuple(choice.strip() for choice in match[1].split(","))
    return None


def registered(kind: type) -> set[str]:
    return {name for name, cls in make_plugin_manager().scorers().items()
            if issubclass(cls, kind) and cls.__module__.startswith(BUILTIN)}


def test_choices_match_what_the_config_accepts(fields, rows):
    problems = []
    for key in sorted(set(fields) & set(rows)):
        field, row = fields[key], rows[key]
        if field.type not in ("str", "str | None"):
            continue
        documented = CHOICE.findall(row.range)
        if row.range.strip() != NONE and ", ".join(f"`{c}`" for c in documented) != row.range:
            problems.append(f"{key}: range {row.range!r} is neither {NONE} nor a list of "
                            "`choice`s")
            continue
        if key in RUNTIME_CHOICES:
            code = registered(RUNTIME_CHOICES[key])
            if set(documented) != code:
                problems.append(f"{key}: choices {sorted(documented)} documented, the built-in "
                                f"{RUNTIME_CHOICES[key].__name__}s are {sorted(code)}")
            continue
        code = rejected_choices(field)
        if code is None:
            if documented:
                problems.append(f"{key}: choices {documented} documented, but {BOGUS!r} is "
                                "accepted")
            continue
        if sorted(documented) != sorted(code):
            problems.append(f"{key}: choices {documented} documented, {list(code)} in code")
        problems += [f"{key}: documented choice {choice!r} is rejected"
                     for choice in documented if not accepts(field, choice)]
    assert not problems, report(problems)


# ------------------------------------------------------------------ examples

def test_documented_overrides_load():
    """Every ``--set KEY=VALUE`` example in the document is a valid override."""
    text = DOC.read_text(encoding="utf-8")
    overrides = re.findall(r"--set '([a-z_.]+=[^']+)'", text)
    overrides += re.findall(r"`--set ([a-z_.]+=[^`'\s]+)`", text)
    assert len(overrides) >= 4
    for override in overrides:
        load_config(None, [override])


def test_the_yaml_example_loads(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "docs/config.md lost its YAML example"
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(block[1]), encoding="utf-8")
    config = load_config(path)
    assert config.detectors == ["logbert", "deeplog"]


# ------------------------------------------------------------------ the checker checks

def test_the_checks_catch_drift(fields, declared):
    """The helpers above fail on a wrong default, range or choice list."""
    batch = fields["training.batch_size"]
    assert not same_value(parse_default("33", batch.default), batch.default)
    assert same_value(parse_default("2e-5", 2e-5), 2e-5)
    assert declared[batch.owner, batch.name] != parse_bounds("≥ 0", batch)
    assert declared[batch.owner, batch.name] == parse_bounds("`≥ 1`", batch)
    mask = fields["models.logbert.mask_prob"]
    assert (mask.owner, mask.name) not in declared       # a hand-written check: probed
    assert not all(accepts(mask, value) == ok
                   for value, ok in probes(parse_bounds("(0, 1]", mask), False))
    assert all(accepts(mask, value) == ok
               for value, ok in probes(parse_bounds("(0, 1)", mask), False))
    assert set(rejected_choices(fields["data.split"])) == {"date", "random"}
    assert rejected_choices(fields["output_dir"]) is None
    rows = doc_rows("| Key | Type | Default | Range | Meaning |\n|---|---|---|---|---|\n"
                    "| `a.b` | `float \\| None` | `null` | — | x |\n")
    assert rows["a.b"].type == "float | None" and rows["a.b"].default == "null"
