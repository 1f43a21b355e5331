"""The API reference at ``/docs``: one HTML page drawn from the OpenAPI schema, no scripts.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, which fails on an observatory network
without internet access. This page is generated on the server from the same OpenAPI schema
(``/openapi.json`` stays available for client generators): every route with its summary,
request body fields (type, bounds, description) and answers.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["render_docs"]

_STYLE = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
          "h2{border-top:1px solid #ddd;padding-top:.6em}code{background:#f4f4f4;padding:1px 4px}"
          "table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;"
          "padding:3px 8px;text-align:left;font-size:13px;vertical-align:top}"
          ".m{font-weight:bold;color:#2a6}")


def _ref(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` (and a one-element ``allOf``) to the schema it names."""
    while True:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = spec.get("components", {}).get("schemas", {}).get(name, {})
        elif len(schema.get("allOf", [])) == 1:
            schema = schema["allOf"][0]
        else:
            return schema


def _type(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(s, spec) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), spec)}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map to {_type(schema['additionalProperties'], spec)}"
    return str(kind)


def _bounds(schema: dict[str, Any]) -> str:
    items = schema.get("items", {}) if schema.get("type") == "array" else schema
    parts = []
    for key, sign in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
                      ("exclusiveMaximum", "<")):
        if key in items:
            parts.append(f"{sign} {items[key]:g}")
    for key, word in (("minItems", "at least"), ("maxItems", "at most")):
        if key in schema:
            parts.append(f"{word} {schema[key]} items")
    for key, word in (("minLength", "length >="), ("maxLength", "length <=")):
        if key in items:
            parts.append(f"{word} {items[key]}")
    return ", ".join(parts)


def _fields(schema: dict[str, Any], spec: dict[str, Any], seen: set[str]) -> str:
    """A table of an object schema's fields, and those of the objects it holds."""
    schema = _ref(schema, spec)
    props = schema.get("properties", {})
    if not props:
        return ""
    required = set(schema.get("required", []))
    rows, nested = [], []
    for name, prop in props.items():
        rows.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
            name + (" *" if name in required else ""), _type(prop, spec), _bounds(prop),
            str(prop.get("description", "")))) + "</tr>")
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        for option in target.get("anyOf", [target]):
            if "$ref" in option and option["$ref"] not in seen:
                seen.add(option["$ref"])
                nested.append((option["$ref"].rsplit("/", 1)[-1], option))
    out = ("<table><tr><th>field (* required)</th><th>type</th><th>bounds</th>"
           "<th>description</th></tr>" + "".join(rows) + "</table>")
    for name, ref in nested:
        inner = _fields(ref, spec, seen)
        if inner:
            out += f"<h4>{html.escape(name)}</h4>" + inner
    return out


def render_docs(spec: dict[str, Any]) -> str:
    """The HTML reference of an OpenAPI ``spec`` (``FastAPI.openapi()``)."""
    info = spec.get("info", {})
    parts = [f"<h1>{html.escape(str(info.get('title', 'API')))} "
             f"{html.escape(str(info.get('version', '')))}</h1>",
             f"<p>{html.escape(str(info.get('description', '')))}</p>",
             "<p>Routes under <code>/v1/</code> need <code>Authorization: Bearer TOKEN</code> "
             "when the server has a token. The machine-readable schema is "
             "<a href='/openapi.json'>/openapi.json</a>.</p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><span class='m'>{method.upper()}</span> "
                         f"<code>{html.escape(path)}</code></h2>")
            text = op.get("description") or op.get("summary") or ""
            parts.append(f"<p>{html.escape(str(text))}</p>")
            body = (op.get("requestBody", {}).get("content", {})
                    .get("application/json", {}).get("schema"))
            if body:
                parts.append("<h3>Request body</h3>" + _fields(body, spec, set()))
            answers = []
            for code, answer in op.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                answers.append(f"<tr><td>{html.escape(code)}</td><td>"
                               f"{html.escape(str(answer.get('description', '')))}</td><td>"
                               f"{html.escape(_type(schema, spec)) if schema else ''}</td></tr>")
            if answers:
                parts.append("<h3>Answers</h3><table><tr><th>status</th><th>meaning</th>"
                             "<th>body</th></tr>" + "".join(answers) + "</table>")
    parts.append("<p>422 answers list at most the first 20 problems "
                 "(<code>detail</code>: field and message) and count all of them "
                 "(<code>errors</code>).</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(str(info.get('title', 'API')))} API</title><style>{_STYLE}</style>"
            f"</head><body>{''.join(parts)}<!-- {html.escape(json.dumps(info))} --></body>"
            "</html>")
