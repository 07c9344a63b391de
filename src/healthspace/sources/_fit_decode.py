"""FIT bytes to plain messages with fitdecode, strictly: a damaged file is an error.

Every data message becomes a :class:`Message` (name, values, raw values, units,
developer fields) with its timestamp resolved, including the 16-bit ``timestamp_16``
of monitoring files, which counts on from the last full timestamp in the file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import fitdecode

from healthspace.errors import SourceError

__all__ = ["FIT_EPOCH", "Message", "decode"]

FIT_EPOCH: Final = datetime(1989, 12, 31, tzinfo=UTC)
# Below this a FIT date_time is seconds since the device started, not a date.
_FIT_DATETIME_MIN: Final = 0x10000000


@dataclass(slots=True)
class Message:
    name: str
    index: int  # position among all data messages, for error places and ordering
    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str | None] = field(default_factory=dict)
    developer: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
    time: datetime | None = None

    def number(self, *names: str) -> float | None:
        """The first of ``names`` holding a finite number."""
        for name in names:
            value = self.values.get(name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float) and value == value and abs(value) != float("inf"):
                return float(value)
        return None

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)


def _time_of(raw: Any) -> datetime | None:
    if isinstance(raw, int) and raw >= _FIT_DATETIME_MIN:
        return FIT_EPOCH + timedelta(seconds=raw)
    return None


def decode(data: bytes, name: str) -> list[Message]:
    """All data messages of a FIT file; SourceError (with the byte offset) when damaged."""
    messages: list[Message] = []
    last_raw_time: int | None = None
    stream = io.BytesIO(data)
    try:
        # fitdecode reports recoverable oddities as warnings; with strict checks
        # on, anything it warns about is damage, and an error says where.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            reader = fitdecode.FitReader(
                stream,
                check_crc=fitdecode.CrcCheck.RAISE,
                error_handling=fitdecode.ErrorHandling.RAISE,
            )
            with reader:
                for frame in reader:
                    if not isinstance(frame, fitdecode.FitDataMessage):
                        continue
                    message = _message(frame, len(messages))
                    raw_time = message.raw.get("timestamp")
                    if isinstance(raw_time, int) and raw_time >= _FIT_DATETIME_MIN:
                        last_raw_time = raw_time
                    elif "timestamp_16" in message.raw and last_raw_time is not None:
                        low = int(message.raw["timestamp_16"])
                        last_raw_time += (low - (last_raw_time & 0xFFFF)) & 0xFFFF
                        message.time = _time_of(last_raw_time)
                    messages.append(message)
    except fitdecode.FitEOFError as exc:
        raise SourceError(
            "the FIT file ends early (truncated)", file=name, place=f"byte {exc.offset}"
        ) from None
    except fitdecode.FitParseError as exc:
        raise SourceError(
            "the FIT data is malformed", file=name, place=f"byte {exc.offset}"
        ) from None
    except fitdecode.FitCRCError:
        raise SourceError(
            "the FIT checksum does not match (damaged file)",
            file=name,
            place=f"byte {stream.tell()}",
        ) from None
    except fitdecode.FitHeaderError:
        raise SourceError("not a valid FIT header", file=name, place="byte 0") from None
    except Exception as exc:
        # Damaged data can also trip fitdecode's internals (TypeError, assertions):
        # whatever the cause, this file cannot be read, and the error says where.
        raise SourceError(
            f"the FIT file could not be decoded ({type(exc).__name__})",
            file=name,
            place=f"byte {stream.tell()}",
        ) from None
    return messages


def _message(frame: Any, index: int) -> Message:
    message = Message(name=str(frame.name), index=index)
    for data in frame.fields:
        if getattr(data.field_def, "is_dev", False):
            message.developer[str(data.name)] = (data.value, data.units)
            continue
        message.values[data.name] = data.value
        message.raw[data.name] = data.raw_value
        message.units[data.name] = data.units
    stamp = message.values.get("timestamp")
    if isinstance(stamp, datetime):
        message.time = stamp
    return message
