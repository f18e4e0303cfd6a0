"""A config field and its rules as data: `option` (one key: validation rules, doc, marks),
`section` (a nested dataclass of keys), and `key_marks`, which reads the marks a key path
carries. `config.py`'s loader checks the rules; the run folder (resume) and the sweep
(population grouping) read the marks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import field
from functools import cache
from typing import Any


def option(default, *, choices: Iterable | None = None, gt=None, ge=None, le=None, lt=None,
           finite: bool = True, doc: str = "", path: bool = False, paths: Iterable[str] = (),
           resumable: bool = False, per_member: bool = False,
           trains_when: tuple[str, Any] | None = None):
    """A config field with its rules as metadata. Floats (alone or in lists) must be finite
    unless `finite=False`; `le`/`lt` bounds also say what can never run (a size that cannot
    be allocated). `path=True`: a relative path written in a config file is read relative
    to that file's folder (`config_paths.resolve_paths`); `paths`: the key paths that are
    such paths inside a mapping of key paths (a sweep's `set`, `grid`, `cases`). The marks
    (see `key_marks`): `resumable`, a change does not refuse a resume (it does not alter
    what is trained); `per_member`, the key may differ between members of one population;
    `trains_when=(sibling, value)`, a resumable path that is the data itself while the
    sibling key has that value (then only the same folder resumes)."""
    meta = {"choices": tuple(choices) if choices else None, "gt": gt, "ge": ge, "le": le,
            "lt": lt, "finite": finite, "doc": doc, "path": path, "paths": frozenset(paths),
            "resumable": resumable,
            "per_member": per_member, "trains_when": trains_when}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls, *, resumable: bool = False, per_member: bool = False):
    """A schema's section (a nested dataclass, built from its defaults); a mark on it holds
    for every key inside it (`eval` resumable, a toy run's `loss` per member)."""
    return field(default_factory=cls,
                 metadata={"resumable": resumable, "per_member": per_member})


MARKS = ("resumable", "per_member", "trains_when")


@cache  # the marks are the schema's, fixed: a sweep asks for each key of every run
def key_marks(schema, path: str) -> dict[str, Any]:
    """The marks of a key path of `schema` (`train.steps`, `train.lr_schedule.kind`, as a
    flattened config names it): those of its field and of every section above it. A path
    the schema does not know (a key of an older version) keeps the marks of the sections
    above it that it knows. Read the result, never change it (it is cached)."""
    marks: dict[str, Any] = {}
    cls = schema
    for part in path.split("."):
        fields = ({f.name: f for f in dataclasses.fields(cls)}
                  if dataclasses.is_dataclass(cls) else {})
        if part not in fields:
            break
        marks.update({m: fields[part].metadata[m] for m in MARKS
                      if fields[part].metadata.get(m)})
        cls = typing.get_type_hints(cls)[part]
        if typing.get_origin(cls) in (typing.Union, types.UnionType):  # `Section | None`
            cls = next((a for a in typing.get_args(cls) if a is not type(None)), cls)
    return marks
