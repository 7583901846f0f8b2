"""Typed errors of the library. The edges (CLI, API, UI) turn them into messages."""

from __future__ import annotations

from pathlib import Path


class AssistantError(Exception):
    """Base class: the message is written for the person who will read it."""


class CorpusError(AssistantError):
    """The corpus manifest or one of its files cannot be used."""


class ManifestError(CorpusError):
    """The manifest is missing, malformed or names something that does not exist."""


class DocumentError(CorpusError):
    """One document of the corpus could not be read or parsed."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InputError(AssistantError):
    """What the user gave cannot be used (a file, an option): nothing was changed. Exit code 2."""
