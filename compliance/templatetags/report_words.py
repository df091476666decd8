"""Template filters for the model reports: a JSON key shown as words ("primary_intended_users" → "Primary intended
users"), and a value shown as text whatever its JSON type (a list joined, a number as it is)."""

from __future__ import annotations

from django import template

register = template.Library()

# Abbreviations kept in capitals when a key is turned into words.
_UPPER = {"ai": "AI", "id": "id"}


@register.filter
def key_words(key: object) -> str:
    words = [_UPPER.get(word, word) for word in str(key).split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


@register.filter
def is_mapping(value: object) -> bool:
    return isinstance(value, dict)


@register.filter
def as_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
