"""The CI gate: rules an image must pass, from `--fail-on` or a rules file.

    imgscope inspect IMAGE --fail-on build-tools,wasted>50MB,efficiency<0.9
    imgscope inspect IMAGE --rules .imgscope-ci

A rule names a figure of the analysis and the condition that FAILS the image:
- a finding category alone (`build-tools`, `dev-files`, `package-cache`, `unstripped`,
  `source`, `build-output`, `debug`, `findings`) fails when the image has any such finding;
- `NAME<op>VALUE` compares a figure (`>`, `>=`, `<`, `<=`): sizes take B, kB, MB, GB (1000s)
  or KiB, MiB, GiB; ratios take 0.9 or 90%.

The rules file is dive's .dive-ci format (its three keys mean what they mean in dive) plus
`fail-on`, one rule or a comma-separated list per line, or a `- ` list under it:

    rules:
      lowestEfficiency: 0.9            # fail below this efficiency (final / shipped bytes)
      highestWastedBytes: 50MB         # fail above this many wasted bytes
      highestUserWastedPercent: 0.1    # fail when wasted bytes above layer 0 exceed 10 %
      fail-on: build-tools, package-cache>100MB
      fail-on:
        - unstripped>1MB

`disabled` as a value turns a dive key off. Anything else is an error (exit status 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgscope.errors import ImgscopeError

_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
    "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "tib": 1024**4,
}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}
_RULE = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*(?:(>=|<=|>|<)\s*([0-9.]+)\s*([a-zA-Z%]*)\s*)?$")

# Finding categories a bare rule can name (Finding.category, plus "findings" for all).
CATEGORIES = ("build-tools", "dev-files", "package-cache", "unstripped", "source",
              "build-output", "debug", "findings")


# What only the package analysis (findings, recommendations) can measure.
PACKAGE_METRICS = frozenset(CATEGORIES) | {"savings"}


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure a rule can name: its kind (the units a threshold takes) and a line of help."""

    kind: str  # "bytes", "ratio", "count"
    help: str


METRICS: dict[str, Metric] = {
    "wasted": Metric("bytes", "bytes shipped in a layer but hidden by a later one"),
    "user-wasted-percent": Metric("ratio", "wasted bytes in layers above layer 0 / shipped"),
    "efficiency": Metric("ratio", "final filesystem bytes / shipped bytes"),
    "dive-efficiency": Metric("ratio", "dive's efficiency score"),
    "size": Metric("bytes", "bytes of the final filesystem"),
    "shipped": Metric("bytes", "bytes of every file version in every layer"),
    "compressed": Metric("bytes", "layer blobs as stored"),
    "layers": Metric("count", "number of layers"),
    "savings": Metric("bytes", "bytes all recommendations together would save"),
    **{c: Metric("bytes", f"bytes of the {c} findings") for c in CATEGORIES},
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule: the figure it tests and the threshold comparison that fails the image."""

    text: str  # as the user wrote it, for messages
    metric: str
    op: str  # ">", ">=", "<", "<=" (the failing condition)
    threshold: float
    source: str = "--fail-on"  # or "FILE:LINE"
    bare: bool = False  # a category alone: fails on any such finding, even of 0 bytes


@dataclass(frozen=True, slots=True)
class RuleResult:
    """A rule checked against an analysis: the figure's value and whether the image failed."""

    rule: Rule
    value: float
    failed: bool

    @property
    def message(self) -> str:
        shown = _show(self.rule.metric, self.value)
        verdict = "FAIL" if self.failed else "pass"
        return f"{verdict}: {self.rule.text} ({self.rule.metric} is {shown})"


def parse_rule(text: str, source: str = "--fail-on") -> Rule:
    match = _RULE.match(text)
    where = f"{source}: " if source != "--fail-on" else "--fail-on: "
    if not match:
        raise ImgscopeError(f"{where}cannot read rule {text.strip()!r}; write NAME, or "
                            "NAME>VALUE / NAME<VALUE (e.g. build-tools,wasted>50MB,"
                            "efficiency<0.9)")
    name, op, number, unit = match.groups()
    if name not in METRICS:
        raise ImgscopeError(f"{where}unknown rule {name!r}; known: {', '.join(METRICS)}")
    metric = METRICS[name]
    if op is None:
        if name not in CATEGORIES:
            raise ImgscopeError(f"{where}{name!r} needs a condition, e.g. {name}>"
                                + ("50MB" if metric.kind == "bytes" else "0.9"))
        return Rule(text.strip(), name, ">", 0, source, bare=True)
    try:
        value = float(number)
    except ValueError:
        raise ImgscopeError(f"{where}{number!r} in {text.strip()!r} is not a number") from None
    unit_l = unit.lower()
    if metric.kind == "ratio":
        if unit_l == "%":
            value /= 100
        elif unit_l:
            raise ImgscopeError(f"{where}{name} is a ratio: write 0.9 or 90%, not {unit!r}")
    elif metric.kind == "bytes":
        if unit_l not in _UNITS:
            raise ImgscopeError(f"{where}unknown size unit {unit!r} in {text.strip()!r} "
                                "(B, kB, MB, GB, KiB, MiB, GiB)")
        value *= _UNITS[unit_l]
    elif unit_l:
        raise ImgscopeError(f"{where}{name} is a count: no unit, got {unit!r}")
    return Rule(text.strip(), name, op, value, source)


def parse_fail_on(value: str) -> list[Rule]:
    rules = [parse_rule(part) for part in value.split(",") if part.strip()]
    if not rules:
        raise ImgscopeError("--fail-on: no rule given")
    return rules


_DIVE_KEYS = {
    "lowestEfficiency": ("efficiency", "<"),
    "highestWastedBytes": ("wasted", ">"),
    "highestUserWastedPercent": ("user-wasted-percent", ">"),
}


def parse_rules_file(path: str | Path) -> list[Rule]:
    """The rules of a .dive-ci style file (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImgscopeError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImgscopeError(f"rules file {path} is not UTF-8 text") from None
    rules: list[Rule] = []
    in_list = False
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped.startswith("- "):
            if not in_list:
                raise ImgscopeError(f"{where}: a '- ' item outside a fail-on list")
            rules += [parse_rule(p, where) for p in stripped[2:].split(",") if p.strip()]
            continue
        key, sep, value = stripped.partition(":")
        key, value = key.strip(), value.strip().strip("'\"")
        if not sep:
            raise ImgscopeError(f"{where}: expected 'key: value', got {stripped!r}")
        in_list = False
        if key == "rules" and not value:
            continue
        if key == "fail-on":
            if not value:
                in_list = True
                continue
            rules += [parse_rule(p, where) for p in value.split(",") if p.strip()]
            continue
        if key in _DIVE_KEYS:
            if value.lower() == "disabled":
                continue
            metric, op = _DIVE_KEYS[key]
            rules.append(parse_rule(f"{metric}{op}{value}", where))
            continue
        raise ImgscopeError(f"{where}: unknown key {key!r} (rules, fail-on, "
                            + ", ".join(_DIVE_KEYS) + ")")
    if not rules:
        raise ImgscopeError(f"rules file {path} has no rules")
    return rules


def figures(analysis) -> dict[str, float]:
    """Every figure a rule can name, from an analysis (advice included when it ran)."""
    s = analysis.summary
    extras = analysis.extras
    by_category: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    counts: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
    for f in extras.findings:
        cat = "build-tools" if f.category == "build-tool" else f.category
        if f.kind == "unstripped":
            cat = "unstripped"
        for name in (cat, "findings"):
            if name in by_category:
                by_category[name] += f.bytes
                counts[name] += 1
    user_wasted = sum(w.size for w in analysis.wasted if w.layer > 0)
    savings = sum(r.bytes_saved for r in extras.recommendations)
    out: dict[str, float] = {
        "wasted": s.wasted_bytes,
        "user-wasted-percent": user_wasted / s.shipped_bytes if s.shipped_bytes else 0.0,
        "efficiency": s.efficiency,
        "dive-efficiency": s.dive_efficiency,
        "size": s.final_bytes,
        "shipped": s.shipped_bytes,
        "compressed": s.compressed_bytes,
        "layers": len(analysis.layers),
        "savings": savings,
    }
    out.update(by_category)
    # A bare category rule fails on any finding, even one of 0 bytes.
    out.update({f"#{k}": v for k, v in counts.items()})
    return out


def evaluate(rules: Sequence[Rule], analysis) -> list[RuleResult]:
    values = figures(analysis)
    out = []
    for rule in rules:
        value = values[rule.metric]
        failed = values[f"#{rule.metric}"] > 0 if rule.bare \
            else _OPS[rule.op](value, rule.threshold)
        out.append(RuleResult(rule, value, failed))
    return out


def _show(metric: str, value: float) -> str:
    kind = METRICS[metric].kind
    if kind == "ratio":
        return f"{value:.4f} ({value:.1%})"
    if kind == "count":
        return str(int(value))
    from imgscope.report.paths import human

    return f"{human(int(value))} ({int(value)} bytes)"
