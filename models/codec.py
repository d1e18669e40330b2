"""Decode raw message bytes into contract events, collecting every reason a message fails."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from models.errors import InvalidEvent
from models.events import Event

_EVENT = TypeAdapter(Event)


def decode_event(raw: bytes | str) -> Event:
    """Parse and validate one message; raise InvalidEvent with every reason it breaks."""
    try:
        return _EVENT.validate_json(raw)
    except ValidationError as exc:
        raise InvalidEvent([_reason(err) for err in exc.errors(include_url=False)]) from None


def _reason(err: dict) -> str:
    """One human line per failure: `field: what is wrong`."""
    kind, ctx, msg = err["type"], err.get("ctx", {}), err["msg"]
    if kind == "json_invalid":
        return f"not valid JSON: {ctx.get('error', msg)}"
    loc = ".".join(str(part) for part in err["loc"] if not _is_union_tag(part))
    if kind == "union_tag_invalid":
        field = ctx.get("discriminator", "").strip("'")
        loc = ".".join(p for p in (loc, field) if p)
        msg = f"unknown {field} {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    elif kind == "union_tag_not_found":
        field = ctx.get("discriminator", "").strip("'")
        loc = ".".join(p for p in (loc, field) if p)
        msg = "Field required"
    elif kind == "value_error":
        msg = str(ctx.get("error", msg))
    return f"{loc}: {msg}" if loc else msg


def _is_union_tag(part: object) -> bool:
    # pydantic puts the discriminator's tag ('lab', 'oxygen'...) into the location.
    return isinstance(part, str) and part in _TAGS


_TAGS = frozenset(
    {"infusion", "lab", "adverse_event", "observation", "disposition"}
    | {
        "temperature_c",
        "systolic_bp_mmhg",
        "vasopressors",
        "oxygen",
        "ice_score",
        "consciousness",
        "seizure",
        "motor_weakness",
        "cerebral_edema",
        "anti_cytokine_given",
    }
)
