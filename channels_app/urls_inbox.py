from django.urls import path

from channels_app.views import inbox, simulator

# Object ids are named `<model_name>_id` (the URL-walk isolation test maps them to models).
urlpatterns = [
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/updates/", inbox.inbox_updates, name="inbox_updates"),
    path("inbox/<int:conversation_id>/", inbox.thread, name="inbox_thread"),
    path(
        "inbox/<int:conversation_id>/updates/",
        inbox.thread_updates,
        name="inbox_thread_updates",
    ),
    path("inbox/<int:conversation_id>/reply/", inbox.reply, name="inbox_reply"),
    path("inbox/<int:conversation_id>/template/", inbox.send_template, name="inbox_template"),
    path("inbox/<int:conversation_id>/note/", inbox.note, name="inbox_note"),
    path("inbox/<int:conversation_id>/assign/", inbox.assign, name="inbox_assign"),
    path("inbox/<int:conversation_id>/status/", inbox.change_status, name="inbox_status"),
    path("inbox/<int:conversation_id>/consent/", inbox.record_consent, name="inbox_consent"),
    # The attachment's position in the message is `?index=` (not an object id).
    path(
        "inbox/<int:conversation_id>/media/<int:message_id>/",
        inbox.media,
        name="inbox_media",
    ),
    path(
        "channels/sandbox/<int:channel_id>/simulator/",
        simulator.simulator,
        name="simulator",
    ),
    path(
        "channels/sandbox/<int:channel_id>/simulator/send/",
        simulator.send,
        name="simulator_send",
    ),
    path(
        "channels/sandbox/<int:channel_id>/simulator/screen/",
        simulator.screen,
        name="simulator_screen",
    ),
]
