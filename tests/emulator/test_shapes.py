"""The emulator's ``shapes`` option: ``"variant"`` changes the shape of successful answers only."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from airflow_provider_ecoinvent.emulator.__main__ import build_parser, config_from_args
from airflow_provider_ecoinvent.emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_ecoinvent.emulator.testing import EmulatorFactory

    from .conftest import Api


def test_shapes_round_trip_through_argv() -> None:
    config = EmulatorConfig(shapes="variant")
    parser = build_parser()
    assert config_from_args(parser.parse_args(config.to_argv()), parser) == config
    assert (
        "--shapes"
        in subprocess.run(
            [sys.executable, "-m", "airflow_provider_ecoinvent.emulator", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )


def test_variant_answers_differ_from_the_contract(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
) -> None:
    api = make_api(ecoinvent_emulator_factory(shapes="variant"))
    token = api.session.post(
        api.emulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": api.emulator.client_id,
            "client_secret": api.emulator.client_secret,
        },
        timeout=10,
    ).json()
    assert token["expires_in"] == "3600"
    assert list(api.get("/versions").json()) == ["items"]
    indicators = api.get("/indicators").json()
    assert isinstance(indicators, list)
    assert "name" in indicators[0]
    assert "indicator" not in indicators[0]
    search = api.get("/datasets", params={"limit": 2}).json()
    assert "total" not in search
    assert "activity_name" in search["results"][0]
    assert "activity" not in search["results"][0]
    assert isinstance(search["results"][0]["sectors"], str)
    batch = api.post("/datasets/batch", json={"dataset_ids": [1], "indicator_ids": [1]}).json()
    assert list(batch) == ["total", "results"]
    assert isinstance(batch["results"][0]["impact_scores"][0]["score"], str)


def test_variant_keeps_errors_usage_and_faults_as_in_the_contract(
    ecoinvent_emulator_factory: EmulatorFactory, make_api: Callable[..., Api]
) -> None:
    emulator = ecoinvent_emulator_factory(shapes="variant")
    api = make_api(emulator)
    assert api.get("/datasets/999999").json() == {"detail": "Dataset 999999 not found in version 3.11 (cutoff)"}
    emulator.add_fault("status", status=503, path="/versions")
    assert api.get("/versions").status_code == 503
    assert api.post("/datasets/batch", json={"dataset_ids": [1, 2], "indicator_ids": [1]}).status_code == 200
    assert emulator.stats()["usage"][emulator.client_id]["datasets"] == 2
