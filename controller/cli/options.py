"""What several commands share: the ``--database-url`` option and the settings from the environment, a bad
``ADC_*`` value reported as the option error it is (one line, the setting named)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from controller.settings import Settings

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", envvar="ADC_DATABASE_URL", help="SQLAlchemy URL of the store.")
]


def settings_from_env(database_url: str | None = None) -> Settings:
    from pydantic import ValidationError

    from controller.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(f"setting ADC_{'_'.join(map(str, first['loc'])).upper()}: {first['msg']}") from exc
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings
