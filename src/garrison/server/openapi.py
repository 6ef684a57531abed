"""The OpenAPI 3.1 document of the backend API, with schemas generated from the msgspec structs."""

from __future__ import annotations

from typing import Any

import msgspec

from garrison import __version__
from garrison.events.alert import Alert
from garrison.events.envelope import Envelope
from garrison.events.policy import PolicyAssignment

_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_OK = {"200": {"description": "ok"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json(_ref("Error"))}


def openapi_document() -> dict[str, Any]:
    (alert_schema, envelope_schema, policy_schema), components = msgspec.json.schema_components(
        [Alert, Envelope, PolicyAssignment], ref_template="#/components/schemas/{name}"
    )
    components["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    components["IngestResult"] = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"index": {"type": "integer"}, "error": {"type": "string"}},
                },
            },
        },
    }
    filters = [
        ("cluster", "string", "cluster name"),
        ("namespace", "string", "namespace"),
        ("rule", "string", "rule id"),
        ("status", "string", "active, resolved or dismissed"),
        ("severity", "string", "exactly this severity"),
        ("min_severity", "string", "this severity or higher"),
        ("since", "number", "last seen at or after (epoch seconds)"),
        ("until", "number", "first seen at or before (epoch seconds)"),
        ("limit", "integer", "at most this many (default 100, max 10000)"),
        ("offset", "integer", "skip this many"),
    ]
    cluster_name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    alert_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "garrison API", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/ingest": {
                "post": {
                    "summary": "Ingest a batch of envelopes (agents; cluster token)",
                    "security": _BEARER,
                    "requestBody": _json(
                        {
                            "type": "object",
                            "properties": {
                                "envelopes": {"type": "array", "items": envelope_schema}
                            },
                            "required": ["envelopes"],
                        }
                    ),
                    "responses": {
                        "200": {"description": "stored", **_json(_ref("IngestResult"))},
                        "400": _error("not an envelope batch"),
                        "401": _error("unknown or revoked cluster token"),
                        "413": _error("body too large"),
                    },
                }
            },
            "/v1/alerts": {
                "get": {
                    "summary": "List alerts, newest first",
                    "security": _BEARER,
                    "parameters": [
                        {"name": n, "in": "query", "schema": {"type": t}, "description": d}
                        for n, t, d in filters
                    ],
                    "responses": {
                        "200": {
                            "description": "alerts",
                            **_json(
                                {
                                    "type": "object",
                                    "properties": {
                                        "alerts": {"type": "array", "items": alert_schema},
                                        "count": {"type": "integer"},
                                    },
                                }
                            ),
                        },
                        "400": _error("bad filter"),
                        "401": _error("unknown API token"),
                    },
                }
            },
            "/v1/alerts/{id}": {
                "get": {
                    "summary": "One alert",
                    "security": _BEARER,
                    "parameters": [alert_id],
                    "responses": {
                        "200": {"description": "the alert", **_json(alert_schema)},
                        "404": _error("no such alert"),
                    },
                },
                "patch": {
                    "summary": "Change an alert's status",
                    "security": _BEARER,
                    "parameters": [alert_id],
                    "requestBody": _json(
                        {
                            "type": "object",
                            "properties": {"status": {"enum": ["active", "resolved", "dismissed"]}},
                            "required": ["status"],
                        }
                    ),
                    "responses": {
                        "200": {"description": "the changed alert", **_json(alert_schema)},
                        "400": _error("bad status"),
                        "404": _error("no such alert"),
                    },
                },
            },
            "/v1/clusters": {
                "get": {
                    "summary": "List enrolled clusters",
                    "security": _BEARER,
                    "responses": {"200": {"description": "clusters"}},
                },
                "post": {
                    "summary": "Enrol a cluster; the answer holds its agent token (shown once)",
                    "security": _BEARER,
                    "requestBody": _json(
                        {"type": "object", "properties": {"name": {"type": "string"}}}
                    ),
                    "responses": {
                        "201": {"description": "enrolled"},
                        "409": _error("name taken"),
                    },
                },
            },
            "/v1/clusters/{name}/policy": {
                "put": {
                    "summary": "Assign admission policies to a cluster (initiatives, effects, "
                    "templates and constraints, exempt namespaces)",
                    "security": _BEARER,
                    "parameters": [cluster_name],
                    "requestBody": _json(policy_schema),
                    "responses": {
                        "200": {"description": "stored; the answer holds its version"},
                        "400": _error("not a policy assignment"),
                        "404": _error("no such cluster"),
                    },
                },
                "get": {
                    "summary": "A cluster's policy assignment",
                    "security": _BEARER,
                    "parameters": [cluster_name],
                    "responses": {
                        "200": {"description": "the assignment", **_json(policy_schema)},
                        "404": _error("no such cluster or no assignment"),
                    },
                },
            },
            "/v1/policy": {
                "get": {
                    "summary": "The calling cluster's assignment (cluster token or client "
                    "certificate); ETag / If-None-Match",
                    "security": _BEARER,
                    "responses": {
                        "200": {"description": "the assignment", **_json(policy_schema)},
                        "304": {"description": "unchanged"},
                        "401": _error("bad cluster credential"),
                        "404": _error("no assignment"),
                    },
                },
            },
            "/healthz": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text"}},
                }
            },
        },
    }
