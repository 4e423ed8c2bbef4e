"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signed content is ``{id}.{timestamp}.{body}``; the signature is ``v1,`` and the
base64 HMAC-SHA256 of it under the secret (``whsec_`` + base64 key). During a key
rotation the header carries one signature per secret, separated by spaces, so a
receiver holding either the old or the new secret verifies the message.
Signing uses the spec's reference library (``standardwebhooks``); ``verify`` is the
receiver's side with the clock as a parameter (the library reads the wall clock).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from service.errors import SignatureError

TOLERANCE_SECONDS = 5 * 60  # the spec's default, both directions


def sign(secrets: Sequence[str], *, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    moment = datetime.fromtimestamp(timestamp, UTC)
    return " ".join(
        Webhook(secret).sign(msg_id=webhook_id, timestamp=moment, data=body) for secret in secrets
    )


def headers(
    secrets: Sequence[str], *, webhook_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers (plus the JSON content type)."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, webhook_id=webhook_id, timestamp=timestamp, body=body),
        "content-type": "application/json",
    }


def verify(
    secrets: Sequence[str],
    received: Mapping[str, str],
    body: str | bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise ``SignatureError`` unless ``received`` headers sign ``body`` under a secret.

    The timestamp must be an integer within ``tolerance`` seconds of ``now``; any one
    ``v1`` signature matching any one secret is enough (constant-time comparison).
    """
    lowered = {name.lower(): value for name, value in received.items()}
    webhook_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (webhook_id and stamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise SignatureError(f"webhook-timestamp is not an integer: {stamp[:40]!r}")
    timestamp = int(stamp)
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"webhook-timestamp {timestamp} is not within {tolerance:g} s of now")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    expected = [
        base64.b64decode(
            sign([secret], webhook_id=webhook_id, timestamp=timestamp, body=text).split(",", 1)[1]
        )
        for secret in secrets
    ]
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, want) for want in expected):
            return
    raise SignatureError("no matching v1 signature")
