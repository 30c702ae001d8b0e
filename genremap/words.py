"""Counts in messages, with their nouns in the right number (`1 artist`, `2,345 artists`)."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with thousands separators and `noun`, or its plural (default: noun + 's') unless n is 1."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
