"""The provider description Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow validates this dict against its JSON schema whenever it loads providers, and a bad dict breaks
provider discovery for the whole installation, so it is plain data and covered by a schema test. The UI
of Airflow 3.2+ builds the connection form from ``connection-types`` alone; Airflow 3.1 asks the hook
instead (``get_ui_field_behaviour`` and ``get_connection_form_widgets``), which answers from the same
data through :func:`legacy_ui_field_behaviour` and :func:`legacy_connection_form_widgets`.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_ecoinvent import __version__
from airflow_provider_ecoinvent._client.constants import (
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMIT_BUDGET,
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_URL,
    KNOWN_EXTRAS,
)

#: Standard fields: relabelled to what they hold for ecoinvent, the unused ones hidden.
UI_FIELD_BEHAVIOUR: Final[dict[str, Any]] = {
    "hidden-fields": ["schema", "port", "extra"],
    "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
    "placeholders": {
        "host": DEFAULT_API_URL,
        "login": "client id issued by ecoinvent",
        "password": "client secret issued by ecoinvent",
    },
}

#: Extra fields of the connection form; the values land in ``Connection.extra`` under these names.
#: No text field has a ``default``: the form would save it into every new connection, and Airflow feeds
#: every string extra to its secret masker, which logs "Skipping masking for a secret as it's too short"
#: in every task for values such as ``/v0``, ``body`` or ``true``. An empty field means the default.
CONN_FIELDS: Final[dict[str, Any]] = {
    "token_url": {
        "label": "Token URL",
        "description": f"{KNOWN_EXTRAS['token_url']} Default: {DEFAULT_TOKEN_URL}",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "api_prefix": {
        "label": "API path prefix",
        "description": f"{KNOWN_EXTRAS['api_prefix']} Some accounts use /v3/api1.",
        "schema": {"type": ["string", "null"]},
    },
    "client_auth": {
        "label": "Client authentication",
        "description": KNOWN_EXTRAS["client_auth"],
        "schema": {"type": ["string", "null"], "enum": ["body", "basic", None]},
    },
    "user_id": {
        "label": "User id (X-User-Id)",
        "description": KNOWN_EXTRAS["user_id"] + " Keep it stable.",
        "schema": {"type": ["string", "null"]},
    },
    "organization_id": {
        "label": "Organization id (X-Organization-Id)",
        "description": KNOWN_EXTRAS["organization_id"],
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": KNOWN_EXTRAS["timeout"],
        "schema": {"type": ["number", "null"], "minimum": 1, "default": DEFAULT_TIMEOUT},
    },
    "max_retries": {
        "label": "Max retries",
        "description": KNOWN_EXTRAS["max_retries"],
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 100, "default": DEFAULT_MAX_RETRIES},
    },
    "rate_limit_budget": {
        "label": "Rate-limit budget (seconds)",
        "description": KNOWN_EXTRAS["rate_limit_budget"],
        "schema": {"type": ["number", "null"], "minimum": 0, "maximum": 3600, "default": DEFAULT_RATE_LIMIT_BUDGET},
    },
    "batch_size": {
        "label": "Batch size",
        "description": KNOWN_EXTRAS["batch_size"],
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000, "default": DEFAULT_BATCH_SIZE},
    },
    "verify": {
        "label": "TLS verification",
        "description": KNOWN_EXTRAS["verify"],
        "schema": {"type": ["string", "null"]},
    },
    "allow_insecure_http": {
        "label": "Allow plain HTTP",
        "description": KNOWN_EXTRAS["allow_insecure_http"],
        "schema": {"type": "boolean", "default": False},
    },
    "max_unique_datasets": {
        "label": "Cost guard: max unique datasets per task",
        "description": KNOWN_EXTRAS["max_unique_datasets"] + " Empty: no limit.",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
    "max_response_bytes": {
        "label": "Max answer size (bytes)",
        "description": KNOWN_EXTRAS["max_response_bytes"],
        "schema": {"type": ["integer", "null"], "minimum": 1024},
    },
    "max_unique_indicators": {
        "label": "Cost guard: max unique indicators per task",
        "description": KNOWN_EXTRAS["max_unique_indicators"] + " Empty: no limit.",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ``ProvidersManager`` (plain data, no I/O)."""
    return {
        "package-name": "airflow-provider-ecoinvent",
        "name": "ecoinvent",
        "description": "`ecoinvent <https://ecoinvent.org/>`__ life-cycle-assessment data: datasets, "
        "impact scores, LCIA indicators and database versions.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "ecoinvent",
                "external-doc-url": "https://docs.api.ecoinvent.org/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "ecoinvent", "python-modules": ["airflow_provider_ecoinvent.hooks.ecoinvent"]}],
        "operators": [
            {"integration-name": "ecoinvent", "python-modules": ["airflow_provider_ecoinvent.operators.ecoinvent"]}
        ],
        "sensors": [
            {"integration-name": "ecoinvent", "python-modules": ["airflow_provider_ecoinvent.sensors.ecoinvent"]}
        ],
        "triggers": [
            {"integration-name": "ecoinvent", "python-modules": ["airflow_provider_ecoinvent.triggers.ecoinvent"]}
        ],
        "connection-types": [
            {
                "connection-type": "ecoinvent",
                "hook-class-name": "airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook",
                "hook-name": "ecoinvent",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }


def legacy_ui_field_behaviour() -> dict[str, Any]:
    """:data:`UI_FIELD_BEHAVIOUR` as Airflow 3.1 reads it from a hook: snake_case keys.

    Airflow 3.1 validates the hook's answer against a schema requiring ``hidden_fields`` and ``relabeling``
    and drops the whole customisation (relabels included) when given the provider-info spelling.
    """
    return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}


def legacy_connection_form_widgets() -> dict[str, Any]:
    """:data:`CONN_FIELDS` as the wtforms fields of Airflow 3.1's connection form, one per extra.

    Without them Airflow 3.1 would hide ``extra`` (see :data:`UI_FIELD_BEHAVIOUR`) and offer no way to edit
    the extras. Imports wtforms lazily: Airflow 3.1 calls this only when wtforms is importable (the UI
    swaps the field classes for its own stand-ins), and never at DAG parse time.
    """
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import Optional, any_of

    classes = {"boolean": BooleanField, "integer": IntegerField}
    widgets: dict[str, Any] = {}
    for name, field in CONN_FIELDS.items():
        schema = field["schema"]
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        field_class = next((classes[kind] for kind in types if kind in classes), StringField)
        validators: list[Any] = [Optional()]
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
        default = schema.get("default")
        if field_class is StringField and default is not None:
            default = str(default)  # a text box holds text ("60"); the connection parser reads it tolerantly
        widgets[name] = field_class(
            label=field["label"], validators=validators, description=field["description"], default=default
        )
    return widgets


#: The entry point Airflow calls (the legacy form helpers serve the hook on Airflow 3.1).
__all__ = ["get_provider_info"]
