"""Every outside format in and out: book files and profile files (JSON/YAML)."""

from marginkit.io.book_file import load_book, parse_book
from marginkit.io.structured import load_structured

__all__ = ["load_book", "load_structured", "parse_book"]
