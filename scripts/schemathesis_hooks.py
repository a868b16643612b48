"""Schemathesis hooks for funnel (loaded by scripts/schemathesis through SCHEMATHESIS_HOOKS).

`POST .../inbound-email` takes a raw e-mail (`message/rfc822`), a media type schemathesis has no
serializer for: this gives it raw bytes to send, a mix of well-formed messages (which make deals),
near-misses (no From, a bad sender) and arbitrary bytes (which must be refused with a 4xx).
"""

from hypothesis import strategies as st

import schemathesis

_line = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)

_messages = st.one_of(
    st.builds(
        lambda name, subject, body: (
            f"From: {name} <ada@example.com>\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
        ),
        _line,
        _line,
        _line,
    ),
    st.builds(lambda subject: f"Subject: {subject}\r\n\r\nno sender\r\n".encode(), _line),
    st.builds(lambda sender: f"From: {sender}\r\n\r\nbody\r\n".encode(), _line),
    st.binary(max_size=512),
)

schemathesis.openapi.media_type("message/rfc822", _messages)
