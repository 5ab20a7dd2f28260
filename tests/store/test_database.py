"""Opening the store: URL checks and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import ConfigurationError
from controller.store.database import Database


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("not a url", "store.bad_url"),
        ("mysql://root@localhost/test", "store.bad_url"),
        ("sqlite://", "store.bad_url"),
        ("sqlite:///:memory:", "store.bad_url"),
        ("postgresql+nosuchdriver://x/y", "store.bad_url"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Database.open(url)
    assert caught.value.code == code


def test_missing_sqlite_file_is_not_created_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "adc.db"
    with pytest.raises(ConfigurationError) as caught:
        Database.open(f"sqlite:///{path}")
    assert caught.value.code == "store.not_initialised"
    assert not path.exists()
    Database.open(f"sqlite:///{path}", create=True).dispose()
    assert path.parent.is_dir()
