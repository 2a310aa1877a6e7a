"""Render universe-package/ as DC/OS Cosmos does (`PackageDefinitionRenderer.renderMarathonV2App`).

What Cosmos does, and this helper with it:
1. the defaults of config.json (`JsonSchema.extractDefaultsFromSchema`: a property's `default`, else its
   nested `properties`, recursively) deep-merged with the user's options (user wins);
2. the merged options validated against config.json (a Draft 4 validator);
3. `{"resource": resource.json}` merged on top;
4. every value converted for mustache.java (`jsonToJava`): strings JSON-escaped without their quotes,
   numbers as an Int when they are whole and fit 32 bits, else a Double printed as Java prints it,
   booleans printed `true`/`false`;
5. rendered with mustache.java's HTML escaping switched off (Cosmos overrides `encode`), parsed as a JSON
   object, and decorated with the `DCOS_PACKAGE_*` labels.
Here chevron stands in for mustache.java; its HTML escaping is switched off the same way.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import chevron
import chevron.renderer
import jsonschema

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "universe-package"
SHARED = REPO.parent / "shared"
SCHEMAS = SHARED / "schemas"

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def package_files() -> dict[str, Any]:
    """The package's four files: package, config, resource (parsed) and template (text)."""
    return {
        "package": load_json(PACKAGE_DIR / "package.json"),
        "config": load_json(PACKAGE_DIR / "config.json"),
        "resource": load_json(PACKAGE_DIR / "resource.json"),
        "template": (PACKAGE_DIR / "marathon.json.mustache").read_text(encoding="utf-8"),
    }


def extract_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Cosmos's `extractDefaultsFromSchema`."""
    defaults: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        if "default" in prop:
            defaults[name] = prop["default"]
        elif "properties" in prop:
            defaults[name] = extract_defaults(prop)
    return defaults


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Cosmos's `JsonUtil.merge`: objects merge key by key, anything else from `override` wins."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class JavaBoolean:
    """A boolean as mustache.java sees a java.lang.Boolean: falsy in sections, printed true/false."""

    _CHEVRON_return_scope_when_falsy = True  # chevron: return the object itself even when falsy

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class JavaDouble:
    """A java.lang.Double, printed as `Double.toString` prints it (1.5, 604800.0, 3.0E9, 1.0E-4)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return True  # mustache.java renders a section for any non-null, non-Boolean, non-"" value

    def __str__(self) -> str:
        return java_double_to_string(self.value)


def java_double_to_string(value: float) -> str:
    """`Double.toString` for finite values: plain decimals in [1e-3, 1e7), else d.dddE<exp>."""
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = exponent + len(text) - 1
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


def to_mustache(value: Any) -> Any:
    """Cosmos's `jsonToJava`: what mustache.java is given for each JSON value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return JavaBoolean(value)
    if isinstance(value, int | float):
        if float(value).is_integer() and INT_MIN <= value <= INT_MAX:
            return int(value)
        return JavaDouble(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, list):
        return [to_mustache(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_mustache(item) for key, item in value.items()}
    raise TypeError(f"not a JSON value: {value!r}")


def merged_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults deep-merged with `options`, validated against config.json as Cosmos does."""
    files = package_files()
    merged = deep_merge(extract_defaults(files["config"]), options or {})
    jsonschema.Draft4Validator(files["config"]).validate(merged)
    return merged


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """mustache.java with `encode` overridden to write values unescaped, as Cosmos configures it."""
    with mock.patch.object(chevron.renderer, "_html_escape", lambda text: text):
        return chevron.render(template, to_mustache(context))


def render(options: Mapping[str, Any] | None = None, source: str = "https://universe.example/repo") -> dict:
    """The Marathon app Cosmos would post for `dcos package install mesos-gpu --options=<options>`."""
    files = package_files()
    context = deep_merge(merged_options(options), {"resource": files["resource"]})
    app = json.loads(render_template(files["template"], context))
    if not isinstance(app, dict):
        raise ValueError("marathon.json.mustache must render a JSON object")
    package = files["package"]
    labels = dict(app.get("labels", {}))
    labels.update(
        {
            "DCOS_PACKAGE_NAME": package["name"],
            "DCOS_PACKAGE_VERSION": package["version"],
            "DCOS_PACKAGE_SOURCE": source,
            "DCOS_PACKAGE_OPTIONS": base64.b64encode(json.dumps(dict(options or {})).encode()).decode(),
        }
    )
    app["labels"] = labels
    return app
