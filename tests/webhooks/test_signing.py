import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks import signing

BODY = b'{"event":"execution.completed","execution_id":"exec_1","result":{"value":"<&>"}}'


def test_standard_webhooks_golden_vector():
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = signing.standard_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_body_signature_is_the_hex_hmac_of_the_raw_body_with_the_secret_bytes():
    secret = "whsec_your_signing_secret"
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert signing.body_signature(secret.encode(), BODY) == f"sha256={expected}"


def _headers(secret: str, timestamp: int | None = None) -> dict[str, str]:
    return signing.delivery_headers(
        delivery_id="0b9c6c1e-2f0a-4a43-9d1f-3f0c7a1c1e11",
        event="execution.completed",
        attempt=2,
        timestamp=timestamp if timestamp is not None else int(time.time()),
        body=BODY,
        secret=secret,
        extra={"X-Tenant": "acme"},
    )


@pytest.mark.parametrize(
    "secret", ["whsec_your_signing_secret", "s3cr3t", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "ü-ñ"]
)
def test_one_secret_verifies_both_schemes(secret):
    headers = _headers(secret)
    # The README's GitHub-style recipe.
    digest = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-AgentField-Signature"], f"sha256={digest}")
    assert signing.verify_body_signature(secret, BODY, headers["X-AgentField-Signature"])
    # The Standard Webhooks library, given the same key bytes (either form).
    StandardWebhook(secret.encode()).verify(BODY, headers, json_parse=False)
    StandardWebhook("whsec_" + base64.b64encode(secret.encode()).decode()).verify(BODY, headers, json_parse=False)


def test_standard_webhooks_rejects_a_tampered_body_or_a_stale_timestamp():
    headers = _headers("s3cr3t")
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(b"s3cr3t").verify(BODY + b" ", headers)
    stale = _headers("s3cr3t", timestamp=int(time.time()) - 6 * 60)
    with pytest.raises(WebhookVerificationError, match="too old"):
        StandardWebhook(b"s3cr3t").verify(BODY, stale)


def test_headers_carry_the_delivery_identity_and_cannot_be_overridden_by_extra_headers():
    headers = signing.delivery_headers(
        delivery_id="d-1",
        event="execution.failed",
        attempt=3,
        timestamp=1700000000,
        body=BODY,
        secret="",
        extra={"X-Tenant": "acme", "webhook-id": "forged", "Content-Type": "text/plain"},
    )
    assert headers["webhook-id"] == headers["X-AgentField-Delivery"] == "d-1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["X-AgentField-Event"] == "execution.failed"
    assert headers["X-AgentField-Attempt"] == "3"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Tenant"] == "acme"
    # No secret: nothing to sign with.
    assert "X-AgentField-Signature" not in headers and "webhook-signature" not in headers


def test_verify_body_signature_refuses_missing_or_malformed_headers():
    assert not signing.verify_body_signature("s3cr3t", BODY, None)
    assert not signing.verify_body_signature("s3cr3t", BODY, "sha256=zz")
    assert not signing.verify_body_signature("", BODY, signing.body_signature(b"", BODY))


def test_timestamp_is_unix_seconds():
    moment = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    headers = _headers("s", timestamp=int(moment.timestamp()))
    assert headers["webhook-timestamp"] == "1795435200"
