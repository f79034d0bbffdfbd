"""Local stand-ins for the messaging providers: tests and benchmarks never reach the internet.

- `provider_stub.ProviderStub`: one local HTTP server speaking Twilio's REST API (api,
  content and messaging hosts) and Meta's Graph API, with failure injection.
- `webhooks`: signed inbound webhooks exactly as Twilio and Meta send them.
- `fixtures`: the `provider_stub` pytest fixture (settings point the adapters at the stub).
"""

from tests.fakes.provider_stub import ProviderStub, StubTwilioHttpClient
from tests.fakes.webhooks import (
    meta_inbound_message,
    meta_signature,
    meta_status,
    meta_webhook,
    twilio_inbound_message,
    twilio_signature,
    twilio_status_callback,
)

__all__ = [
    "ProviderStub",
    "StubTwilioHttpClient",
    "meta_inbound_message",
    "meta_signature",
    "meta_status",
    "meta_webhook",
    "twilio_inbound_message",
    "twilio_signature",
    "twilio_status_callback",
]
