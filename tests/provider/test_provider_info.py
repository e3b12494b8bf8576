"""The provider registers with Airflow: schema-valid info, discovered by ProvidersManager and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_ecoinvent._client.constants import KNOWN_EXTRAS
from airflow_provider_ecoinvent.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR, get_provider_info
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook


def test_provider_info_matches_airflow_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_type_matches_strict_provider_yaml_schema() -> None:
    """The strict schema of provider.yaml describes conn-fields and ui-field-behaviour exactly."""
    schema = json.loads((Path(airflow.__file__).parent / "provider.yaml.schema.json").read_text())
    connection_schema = schema["properties"]["connection-types"]
    jsonschema.validate(get_provider_info()["connection-types"], connection_schema)


def test_package_name_is_the_distribution_name() -> None:
    from importlib.metadata import distribution

    assert get_provider_info()["package-name"] == distribution("airflow-provider-ecoinvent").metadata["Name"]


def test_providers_manager_sees_the_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    assert "airflow-provider-ecoinvent" in ProvidersManager().providers
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as HookRegistry
    except ImportError:  # Airflow before the task-runtime registry
        HookRegistry = ProvidersManager  # type: ignore[misc,assignment]
    hook = HookRegistry().hooks["ecoinvent"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook"
    assert hook.connection_id_attribute_name == "ecoinvent_conn_id"


def test_cli_shows_connection_fields() -> None:
    airflow_cli = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow_cli), "providers", "get", "airflow-provider-ecoinvent", "--full", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    info = json.loads(result.stdout)[0]
    connection = info["connection-types"][0]
    assert connection["connection-type"] == "ecoinvent"
    assert {"token_url", "api_prefix", "client_auth", "user_id", "timeout", "verify"} <= set(connection["conn-fields"])
    assert connection["ui-field-behaviour"]["relabeling"]["login"] == "Client ID"


def _airflow_before(version: str) -> bool:
    from packaging.version import Version

    return Version(airflow.__version__) < Version(version)


def test_connection_form_lets_users_edit_every_extra() -> None:
    """The form the UI gets from its API: relabelled standard fields and one field per extra.

    Airflow 3.2+ builds it from the provider info (``conn-fields``); Airflow 3.1 asks the hook
    (``get_ui_field_behaviour``, ``get_connection_form_widgets``), and dropped the whole customisation when
    the hook answered with the provider-info spelling: no relabels, no field for any extra.
    """
    import warnings

    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = next(m for m in HookMetaService.hook_meta_data() if m.connection_type == "ecoinvent")

    assert meta.standard_fields is not None
    assert (meta.standard_fields.login.title, meta.standard_fields.password.title) == ("Client ID", "Client secret")
    assert meta.standard_fields.host.placeholder == "https://api.ecoinvent.org"
    assert meta.standard_fields.port.hidden
    assert meta.standard_fields.url_schema.hidden
    extra_fields = meta.extra_fields or {}
    assert set(extra_fields) == set(KNOWN_EXTRAS)  # the extra JSON box is hidden: every extra has its field
    assert {name: field["schema"]["title"] for name, field in extra_fields.items()} == {
        name: field["label"] for name, field in CONN_FIELDS.items()
    }
    # None: an empty choice, which means the default ("body"); the form pre-fills nothing (no masking noise).
    assert [v for v in extra_fields["client_auth"]["schema"]["enum"] if v is not None] == ["body", "basic"]
    assert "integer" in extra_fields["max_retries"]["schema"]["type"]
    assert "boolean" in extra_fields["allow_insecure_http"]["schema"]["type"]
    # Airflow 3.2+ deprecates the hook methods and must not call them (it has the provider info).
    assert [str(w.message) for w in caught if "EcoinventHook" in str(w.message)] == []
    registered = ProvidersManager().connection_form_widgets["extra__ecoinvent__token_url"].hook_class_name
    expected = "EcoinventHook" if _airflow_before("3.2") else "airflow_provider_ecoinvent.hooks.ecoinvent.EcoinventHook"
    assert registered == expected  # 3.1: from the hook's widgets; 3.2+: from conn-fields


def test_hook_form_methods_answer_from_the_provider_info() -> None:
    from wtforms import BooleanField, IntegerField, StringField

    widgets = EcoinventHook.get_connection_form_widgets()
    behaviour = EcoinventHook.get_ui_field_behaviour()

    assert set(widgets) == set(CONN_FIELDS) == set(KNOWN_EXTRAS)
    assert widgets["max_retries"].field_class is IntegerField
    assert widgets["allow_insecure_http"].field_class is BooleanField
    assert widgets["timeout"].field_class is StringField
    assert widgets["timeout"].kwargs["default"] == "60.0"
    assert widgets["token_url"].kwargs["label"] == "Token URL"
    assert behaviour == {
        "hidden_fields": ["schema", "port", "extra"],
        "relabeling": {"host": "API base URL", "login": "Client ID", "password": "Client secret"},
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }


def test_importing_the_package_does_no_network_io() -> None:
    """DAG files import the package at parse time: importing and constructing must not touch the network."""
    code = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError("network I/O at import or construction")
socket.socket.connect = refuse
socket.create_connection = refuse
from airflow_provider_ecoinvent.hooks.ecoinvent import EcoinventHook
hook = EcoinventHook("no_such_connection")
print(repr(hook))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "EcoinventHook(ecoinvent_conn_id='no_such_connection')" in result.stdout


def test_dag_files_do_not_load_the_http_stack_at_parse_time() -> None:
    """Operators, the sensor and the watcher trigger are built at DAG parse time, thousands of times an hour;
    the hooks (connection parsing, tokens, HTTP clients) must load only when a task or trigger runs."""
    code = """
import sys
from airflow_provider_ecoinvent.operators.ecoinvent import EcoinventDatasetsOperator, EcoinventOperator
from airflow_provider_ecoinvent.sensors.ecoinvent import EcoinventVersionSensor
from airflow_provider_ecoinvent.triggers.ecoinvent import EcoinventNewVersionTrigger
EcoinventDatasetsOperator(task_id="a", dataset_ids=[1], output_uri="file:///tmp/x.jsonl")
EcoinventOperator(task_id="b", endpoint="versions")
EcoinventVersionSensor(task_id="c", newer_than="3.10")
EcoinventNewVersionTrigger(poll_interval=60)
loaded = sorted(m for m in sys.modules if m.startswith("airflow_provider_ecoinvent.hooks"))
print("LOADED", loaded)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout
