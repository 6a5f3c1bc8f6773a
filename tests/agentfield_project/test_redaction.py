"""Credentials never reach the log output: keys, webhook secrets, signatures, auth headers."""

import logging

import pytest

from agentfield_project.redaction import RedactSecretsFilter, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("registered webhook with secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("X-API-Key: afk_8Yb1c2d3e4f5g6h7i8j9k0", "8Yb1c2d3e4f5g6h7i8j9k0"),
        ("headers={'X-API-Key': 'plainvalue123'}", "plainvalue123"),
        ('{"Authorization": "Bearer abc.def.ghi"}', "abc.def.ghi"),
        ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN"),
        ("sent v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= to receiver", "K5oZfzN95Z9UVu1Esf"),
        ("X-Hub-Signature-256=sha256=" + "ab" * 32, "ab" * 32),
        ('{"secret": "hunter2-long"}', "hunter2-long"),
    ],
)
def test_redact_removes_the_credential(text, secret):
    assert secret not in redact(text)
    assert "[REDACTED]" in redact(text)


def test_ordinary_messages_are_untouched():
    text = "execution exec_123 succeeded on node echo after 2 attempts (status=200)"
    assert redact(text) == text


def test_the_installed_filter_redacts_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("tests.redaction")
    handler_filter = RedactSecretsFilter()
    try:
        raise ValueError("bad key afk_abcdefghijklmnop")
    except ValueError:
        record = logger.makeRecord("t", logging.ERROR, __file__, 1, "key %s", ("whsec_abcdefgh",), True)
        import sys

        record.exc_info = sys.exc_info()
    assert handler_filter.filter(record) is True
    assert record.getMessage() == "key whsec_[REDACTED]"
    assert "afk_abcdefghijklmnop" not in record.exc_text and "afk_[REDACTED]" in record.exc_text


def test_settings_install_the_filter_on_the_console_handler():
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert handlers and any(isinstance(f, RedactSecretsFilter) for f in handlers[0].filters)
