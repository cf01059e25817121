"""Reading QSettings values that may be of any type: a settings file edited by hand or written by
another version must never stop the app from starting (a string where a number belongs, "0,001"
read back as a list, an empty value). A value that is not of the wanted type gives the default."""
from __future__ import annotations

import math

from PySide6.QtCore import QByteArray


def stored(settings, key: str, default, kind: type | None = None):
    """``settings.value(key)`` as ``kind`` (default: the type of ``default``), else ``default``."""
    kind = kind or type(default)
    value = settings.value(key, default)
    if value is None:
        return default
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()  # QSettings' ini files store "true" / "false"
            return True if text in ("true", "1") else False if text in ("false", "0") else default
        if kind in (int, float):
            number = float(value)
            if not math.isfinite(number):
                return default
            return int(number) if kind is int else number
        if kind is str:
            return value if isinstance(value, str) else default
        if kind is QByteArray:
            return value if isinstance(value, (QByteArray, bytes)) else default
    except (TypeError, ValueError):
        return default
    return value if isinstance(value, kind) else default
