"""Loading the rules document from ``ADC_POLICY_FILE`` or the shipped default (``controller.bootstrap.rules``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.bootstrap.rules import load_rules_file, shipped_rules_text
from controller.domain.policies import Policy
from controller.domain.rules_document import CabinetRules, dump_rules
from controller.errors import ConfigurationError
from controller.fsm.settings import FsmSettings
from controller.settings import Settings

DEFAULTS = CabinetRules(Policy(), FsmSettings())


def refused(path: Path) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        load_rules_file(path)
    assert caught.value.code == "config.invalid"
    return caught.value


def test_no_path_means_the_shipped_default_file() -> None:
    assert load_rules_file(None) == DEFAULTS
    assert "[refrigerator]" in shipped_rules_text()


def test_a_file_is_read_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[refrigerator]\nexcursion_minutes = 20\n", encoding="utf-8")
    assert load_rules_file(path) == CabinetRules(Policy(fridge_excursion_limit=timedelta(minutes=20)), FsmSettings())


def test_a_dumped_file_loads_back(tmp_path: Path) -> None:
    rules = CabinetRules(Policy(search_min_chars=6), FsmSettings(lockout_duration=None))
    path = tmp_path / "policy.toml"
    path.write_text(dump_rules(rules), encoding="utf-8")
    assert load_rules_file(path) == rules


def test_a_byte_order_mark_is_not_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes("\ufeff[search]\nmin_chars = 4\n".encode())
    assert load_rules_file(path).policy.search_min_chars == 4


def test_a_mistake_in_the_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[refrigerator]\nhigh_c = 1.5\n", encoding="utf-8")
    assert refused(path).detail == f"{path}: [refrigerator] high_c must be above low_c (2.0); got 1.5"


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    error = refused(path)
    assert error.detail == f"{path}: cannot read the policy file: No such file or directory"
    assert error.context == {"path": str(path)}
    assert isinstance(error.__cause__, FileNotFoundError)


def test_a_folder_is_not_a_policy_file(tmp_path: Path) -> None:
    assert refused(tmp_path).detail == f"{tmp_path}: cannot read the policy file: Is a directory"


def test_an_unreadable_file_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("", encoding="utf-8")

    def denied(self: Path) -> bytes:  # chmod 0 does not stop root, who runs CI
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert refused(path).detail == f"{path}: cannot read the policy file: Permission denied"


def test_a_file_that_is_not_utf8_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'[shifts]\ntimezone = "Europe/Z\xfcrich"\n')
    assert refused(path).detail == (
        f"{path}: line 2: the policy file is not UTF-8 text (invalid start byte at byte 29)"
    )


def test_the_setting_is_adc_policy_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ADC_POLICY_FILE", raising=False)
    assert Settings().policy_file is None
    monkeypatch.setenv("ADC_POLICY_FILE", str(tmp_path / "policy.toml"))
    assert Settings().policy_file == tmp_path / "policy.toml"
