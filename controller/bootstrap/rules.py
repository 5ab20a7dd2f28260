"""Reading the cabinet's rules document from a file (``ADC_POLICY_FILE``) or the default shipped with the package.

Responsible for: the file I/O the domain does not do, and naming the path when the file cannot be read. Not
responsible for: what the document may say (``controller.domain.rules_document`` parses and validates it) or which
rules are in force at start (``controller.bootstrap.cabinet``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from controller.domain.rules_document import CabinetRules, parse_rules
from controller.errors import ConfigurationError

SHIPPED_POLICY = "policy.toml"  # in the controller.data folder of the package
SHIPPED_SOURCE = "controller/data/policy.toml"  # how error messages name the shipped file


def shipped_rules_text() -> str:
    """The default rules document that ships with the package, as text."""
    return (resources.files("controller") / "data" / SHIPPED_POLICY).read_text("utf-8")


def load_rules_file(path: Path | None) -> CabinetRules:
    """The rules of the TOML file at ``path``; ``None``: the shipped default. A file that is missing, unreadable
    or not UTF-8 is ``config.invalid`` naming the path, as is any mistake in it."""
    if path is None:
        return parse_rules(shipped_rules_text(), source=SHIPPED_SOURCE)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigurationError(
            "config.invalid", f"{path}: cannot read the policy file: {reason}", path=str(path)
        ) from error
    try:
        # utf-8-sig: an editor's byte-order mark is not a TOML syntax error.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigurationError(
            "config.invalid",
            f"{path}: line {line}: the policy file is not UTF-8 text ({error.reason} at byte {error.start})",
            path=str(path),
            line=line,
        ) from error
    return parse_rules(text, source=str(path))
