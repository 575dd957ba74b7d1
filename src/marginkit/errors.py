"""Errors a user can act on: bad input names the file and the field (spec/cli.md, exit 2)."""

from __future__ import annotations


class MarginkitError(Exception):
    """Base of every error marginkit raises on purpose."""


class InputError(MarginkitError):
    """Bad input: a book, profile or parameter that cannot be used; names the file and field path."""

    def __init__(self, message: str, *, field: str | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.file = file

    def in_file(self, file: str) -> InputError:
        """The same error, attributed to `file` unless it already names one."""
        if self.file is None:
            self.file = file
        return self

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join([*parts, self.message])


class ModelRefusal(InputError):
    """A model asked to margin an instrument type or account mode it does not cover."""
