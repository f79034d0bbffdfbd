"""The provider stub answers like Twilio and Meta, driven by the real clients."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs

import httpx
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes import webhooks
from tests.fakes.provider_stub import ProviderStub, StubTwilioHttpClient, rewrite_twilio_url

SID = "AC" + "1" * 32
TOKEN = "a" * 32


@pytest.fixture
def twilio(provider_stub):
    provider_stub.twilio_account(SID, TOKEN)
    return Client(SID, TOKEN, http_client=StubTwilioHttpClient(provider_stub.base_url, timeout=5))


def test_context_manager_starts_and_stops():
    with ProviderStub() as stub:
        url = stub.base_url
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/nowhere").status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/nowhere", timeout=1)


def test_rewrite_only_twilio_hosts():
    base = "http://127.0.0.1:9"
    assert (
        rewrite_twilio_url("https://api.twilio.com/2010-04-01/Accounts/AC1.json", base)
        == base + "/twilio/api/2010-04-01/Accounts/AC1.json"
    )
    assert (
        rewrite_twilio_url("https://content.twilio.com/v1/ContentAndApprovals", base)
        == base + "/twilio/content/v1/ContentAndApprovals"
    )
    assert rewrite_twilio_url("https://example.com/x", base) == "https://example.com/x"


# --- Twilio ---------------------------------------------------------------------------------


def test_twilio_account_fetch_checks_credentials(provider_stub, twilio):
    account = twilio.api.v2010.accounts(SID).fetch()
    assert account.sid == SID
    assert account.status == "active"

    wrong = Client(SID, "b" * 32, http_client=StubTwilioHttpClient(provider_stub.base_url))
    with pytest.raises(TwilioRestException) as info:
        wrong.api.v2010.accounts(SID).fetch()
    assert info.value.status == 401
    assert info.value.code == 20003
    raw = requests.get(
        provider_stub.base_url + f"/twilio/api/2010-04-01/Accounts/{SID}.json",
        auth=(SID, "nope"),
        timeout=5,
    ).json()
    assert raw == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_twilio_parent_can_fetch_subaccount(provider_stub, twilio):
    sub_sid, sub_token = provider_stub.twilio_account(owner_account_sid=SID)
    sub = twilio.api.v2010.accounts(sub_sid).fetch()
    assert sub.owner_account_sid == SID
    assert sub.auth_token == sub_token
    other_sid, _ = provider_stub.twilio_account()
    with pytest.raises(TwilioRestException) as info:
        twilio.api.v2010.accounts(other_sid).fetch()
    assert info.value.status == 404


def test_twilio_send_records_exactly_what_was_sent(provider_stub, twilio):
    message = twilio.messages.create(
        to="whatsapp:+15550001111",
        from_="whatsapp:+15550002222",
        body="Hello there",
        media_url=["https://example.com/a.jpg", "https://example.com/b.png"],
        status_callback="https://app.example.com/hooks/status",
    )
    assert message.sid.startswith("MM") and len(message.sid) == 34
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.num_media == "2"
    assert len(provider_stub.sent) == 1
    sent = provider_stub.sent[0]
    assert sent["provider"] == "twilio"
    assert sent["message_id"] == message.sid
    assert sent["To"] == "whatsapp:+15550001111"
    assert sent["From"] == "whatsapp:+15550002222"
    assert sent["Body"] == "Hello there"
    assert sent["MediaUrl"] == ["https://example.com/a.jpg", "https://example.com/b.png"]
    assert sent["StatusCallback"] == "https://app.example.com/hooks/status"


def test_twilio_send_with_messaging_service_and_content(provider_stub, twilio):
    message = twilio.messages.create(
        to="whatsapp:+15550001111",
        messaging_service_sid="MG" + "2" * 32,
        content_sid="HX" + "3" * 32,
        content_variables=json.dumps({"1": "Ana"}),
    )
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == "MG" + "2" * 32
    sent = provider_stub.sent[0]
    assert "From" not in sent
    assert json.loads(sent["ContentVariables"]) == {"1": "Ana"}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"from_": "+15550002222", "body": "x"}, 21604),
        ({"to": "+15550001111", "body": "x"}, 21603),
        ({"to": "+15550001111", "from_": "+15550002222"}, 21602),
        ({"to": "whatsapp:+15550001111", "from_": "+15550002222", "body": "x"}, 21910),
    ],
)
def test_twilio_send_validation(provider_stub, twilio, kwargs, code):
    kwargs.setdefault("to", "")
    with pytest.raises(TwilioRestException) as info:
        twilio.messages.create(**kwargs)
    assert info.value.code == code
    assert provider_stub.sent == []


def test_twilio_transient_failures_then_success(provider_stub, twilio):
    provider_stub.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as info:
            twilio.messages.create(to="+15550001111", from_="+15550002222", body="x")
        assert info.value.status == 503
        assert info.value.code == 20503
    twilio.messages.create(to="+15550001111", from_="+15550002222", body="x")
    assert len(provider_stub.sent) == 1


def test_twilio_permanent_failure(provider_stub, twilio):
    provider_stub.fail_permanently(code=21610)
    with pytest.raises(TwilioRestException) as info:
        twilio.messages.create(to="+15550001111", from_="+15550002222", body="x")
    assert info.value.status == 400
    assert info.value.code == 21610
    assert "unsubscribed" in info.value.msg
    assert provider_stub.sent == []
    twilio.messages.create(to="+15550001111", from_="+15550002222", body="x")
    assert len(provider_stub.sent) == 1


def test_twilio_delay_keeps_the_send(provider_stub):
    provider_stub.twilio_account(SID, TOKEN)
    client = Client(
        SID, TOKEN, http_client=StubTwilioHttpClient(provider_stub.base_url, timeout=0.2)
    )
    provider_stub.delay(0.6, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.messages.create(to="+15550001111", from_="+15550002222", body="x")
    assert len(provider_stub.sent) == 1  # processed before the answer was held back
    # The lookup is not the delayed call: it gets a patient client, so a loaded machine
    # cannot fail it on the short timeout that was there only to give up on the send.
    patient = Client(
        SID, TOKEN, http_client=StubTwilioHttpClient(provider_stub.base_url, timeout=10)
    )
    listed = patient.messages.list(to="+15550001111", limit=5)
    assert [m.sid for m in listed] == [provider_stub.sent[0]["message_id"]]


def test_twilio_list_filters_and_pages(provider_stub, twilio):
    for index in range(5):
        twilio.messages.create(to="+15550001111", from_="+15550002222", body=f"m{index}")
    twilio.messages.create(to="+15550003333", from_="+15550002222", body="other")
    listed = twilio.messages.list(to="+15550001111", page_size=2)
    assert [m.body for m in listed] == ["m4", "m3", "m2", "m1", "m0"]
    page = twilio.messages.page(to="+15550001111", page_size=2)
    assert page.next_page_url is not None
    assert page._payload["next_page_uri"].startswith(f"/2010-04-01/Accounts/{SID}/Messages.json?")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    raw = requests.get(
        provider_stub.base_url + f"/twilio/api/2010-04-01/Accounts/{SID}/Messages.json",
        params={"To": "+15550003333", "DateSent": today},
        auth=(SID, TOKEN),
        timeout=5,
    ).json()
    assert [m["body"] for m in raw["messages"]] == ["other"]
    assert set(raw) >= {"first_page_uri", "next_page_uri", "page", "page_size", "uri"}


def test_twilio_content_and_approvals(provider_stub, twilio):
    for index in range(3):
        provider_stub.twilio_content(
            SID,
            friendly_name=f"reminder_{index}",
            body="Hi {{1}}, see you at {{2}}",
            variables={"1": "name", "2": "time"},
        )
    items = list(twilio.content.v1.content_and_approvals.stream(page_size=2))
    assert [i.friendly_name for i in items] == ["reminder_0", "reminder_1", "reminder_2"]
    first = items[0]
    assert first.sid.startswith("HX")
    assert first.types == {"twilio/text": {"body": "Hi {{1}}, see you at {{2}}"}}
    assert first.approval_requests["status"] == "approved"
    assert first.approval_requests["category"] == "UTILITY"


def test_twilio_media_redirects_to_the_media_store(provider_stub):
    provider_stub.twilio_account(SID, TOKEN)
    url = provider_stub.twilio_media(SID, b"\x89PNG...", "image/png")
    assert url.startswith(f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM")
    local = rewrite_twilio_url(url, provider_stub.base_url)
    assert requests.get(local, timeout=5).status_code == 401
    response = requests.get(local, auth=(SID, TOKEN), timeout=5)
    assert response.status_code == 200
    assert response.content == b"\x89PNG..."
    assert response.headers["Content-Type"] == "image/png"
    assert response.history[0].status_code == 307


# --- Meta -----------------------------------------------------------------------------------

PNID = "106540352242922"
WABA = "102290129340398"
META_TOKEN = "EAAG-test-token"


@pytest.fixture
def graph(provider_stub):
    provider_stub.meta_phone_number(
        PNID, META_TOKEN, display_phone_number="+1 555-010-0000", waba_id=WABA
    )
    return httpx.Client(
        base_url=provider_stub.meta_base_url + "/v21.0",
        headers={"Authorization": f"Bearer {META_TOKEN}"},
        timeout=5,
    )


def test_meta_send_text(provider_stub, graph):
    response = graph.post(
        f"/{PNID}/messages",
        json={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+15550001111",
            "type": "text",
            "text": {"body": "Hello", "preview_url": False},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+15550001111", "wa_id": "15550001111"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    sent = provider_stub.sent[0]
    assert sent["provider"] == "meta"
    assert sent["phone_number_id"] == PNID
    assert sent["message_id"] == body["messages"][0]["id"]
    assert sent["text"] == {"body": "Hello", "preview_url": False}


def test_meta_bad_token_and_unknown_number(provider_stub, graph):
    response = graph.post(
        f"/{PNID}/messages",
        headers={"Authorization": "Bearer wrong"},
        json={"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x"}},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == 190
    assert error["type"] == "OAuthException"
    assert error["fbtrace_id"]
    response = graph.get("/999")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert response.json()["error"]["error_subcode"] == 33


def test_meta_injected_failures(provider_stub, graph):
    message = {"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x"}}
    provider_stub.fail_next(1, status=503)
    provider_stub.fail_permanently(code=131050)
    first = graph.post(f"/{PNID}/messages", json=message)
    assert first.status_code == 503
    assert first.json()["error"]["code"] == 131000
    second = graph.post(f"/{PNID}/messages", json=message)
    assert second.status_code == 400
    assert second.json()["error"]["code"] == 131050
    assert graph.post(f"/{PNID}/messages", json=message).status_code == 200
    assert [s["provider"] for s in provider_stub.sent] == ["meta"]


def test_meta_phone_number_and_templates_paging(provider_stub, graph):
    number = graph.get(f"/{PNID}").json()
    assert number["display_phone_number"] == "+1 555-010-0000"
    assert number["quality_rating"] == "GREEN"
    for index in range(3):
        provider_stub.meta_template(WABA, name=f"t{index}", body="Hi {{1}}", example=["Ana"])
    page = graph.get(f"/{WABA}/message_templates", params={"limit": 2}).json()
    assert [t["name"] for t in page["data"]] == ["t0", "t1"]
    assert set(page["paging"]["cursors"]) == {"before", "after"}
    following = httpx.get(
        page["paging"]["next"], headers={"Authorization": f"Bearer {META_TOKEN}"}
    ).json()
    assert [t["name"] for t in following["data"]] == ["t2"]
    assert "next" not in following["paging"]


def test_meta_media_two_steps(provider_stub, graph):
    media_id = provider_stub.meta_media(b"voice", "audio/ogg")
    info = graph.get(f"/{media_id}").json()
    assert info["mime_type"] == "audio/ogg"
    assert info["sha256"] == hashlib.sha256(b"voice").hexdigest()
    assert info["file_size"] == "5"
    assert httpx.get(info["url"]).status_code == 400  # the download needs the token too
    download = httpx.get(info["url"], headers={"Authorization": f"Bearer {META_TOKEN}"})
    assert download.content == b"voice"
    assert download.headers["content-type"] == "audio/ogg"


# --- Webhook builders -----------------------------------------------------------------------


def test_twilio_inbound_signature_is_valid():
    url = "https://app.example.com/hooks/twilio/abc?x=1"
    params, headers = webhooks.twilio_inbound_message(
        url,
        TOKEN,
        from_="+15550001111",
        to="+15550002222",
        body="Hi",
        media=[("https://api.twilio.com/media/1", "image/jpeg")],
        profile_name="Ana",
        messaging_service_sid="MG" + "2" * 32,
    )
    assert params["From"] == "whatsapp:+15550001111"
    assert params["WaId"] == "15550001111"
    assert params["NumMedia"] == "1"
    assert params["MediaContentType0"] == "image/jpeg"
    assert params["MessageSid"].startswith("MM")
    assert params["SmsMessageSid"] == params["MessageSid"]
    assert RequestValidator(TOKEN).validate(url, params, headers["X-Twilio-Signature"])
    # Form-encoded and parsed back, it still validates (what the view receives).
    parsed = {k: v[0] for k, v in parse_qs(webhooks.encode_form(params)).items()}
    assert RequestValidator(TOKEN).validate(url, parsed, headers["X-Twilio-Signature"])
    assert not RequestValidator("x" * 32).validate(url, params, headers["X-Twilio-Signature"])


def test_twilio_status_callback_and_shared_key():
    url = "https://app.example.com/hooks/twilio/abc/status"
    params, headers = webhooks.twilio_status_callback(
        url, TOKEN, message_sid="SM" + "4" * 32, status="undelivered", error_code=30008,
        channel="sms", shared_key=("webhooks_sharedkey_1", "s3cret"),
    )  # fmt: skip
    assert params["MessageStatus"] == params["SmsStatus"] == "undelivered"
    assert params["ErrorCode"] == "30008"
    assert headers["X-Twilio-Webhooks-Signature-Settings"] == (
        "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    )
    assert RequestValidator("s3cret").validate(
        url, params, headers["X-Twilio-Signature"], "HMAC_SHA256"
    )
    assert not RequestValidator(TOKEN).validate(url, params, headers["X-Twilio-Signature"])


def test_meta_inbound_and_status_signatures():
    raw, headers = webhooks.meta_inbound_message(
        "app-secret", phone_number_id=PNID, waba_id=WABA, from_wa_id="+15550001111",
        body="Hi", profile_name="Ana",
    )  # fmt: skip
    expected = hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == "sha256=" + expected
    payload = json.loads(raw)
    value = payload["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == PNID
    assert value["contacts"][0] == {"profile": {"name": "Ana"}, "wa_id": "15550001111"}
    assert value["messages"][0]["text"] == {"body": "Hi"}

    raw, headers = webhooks.meta_status(
        "app-secret", message_id="wamid.X", status="failed", recipient="+15550001111",
        errors=[{"code": 131047, "title": "Re-engagement message"}],
    )  # fmt: skip
    status = json.loads(raw)["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert status["errors"][0]["code"] == 131047
    assert headers["X-Hub-Signature-256"] == webhooks.meta_signature("app-secret", raw)


def test_meta_lead_is_read_with_its_page_token_only(provider_stub):
    leadgen_id = provider_stub.meta_lead(
        "EAAG-page-token",
        field_data={"full_name": "Ana Lima", "phone_number": "+14155550123"},
        form_id="998877",
    )
    url = f"{provider_stub.meta_base_url}/v21.0/{leadgen_id}"
    response = httpx.get(
        url,
        headers={"Authorization": "Bearer EAAG-page-token"},
        params={"fields": "id,field_data,form_id"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": leadgen_id,
        "form_id": "998877",
        "field_data": [
            {"name": "full_name", "values": ["Ana Lima"]},
            {"name": "phone_number", "values": ["+14155550123"]},
        ],
    }
    provider_stub.meta_access_token("EAAG-other-page")
    other = httpx.get(url, headers={"Authorization": "Bearer EAAG-other-page"}, timeout=5)
    assert other.status_code == 400 and other.json()["error"]["code"] == 100
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
