from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self):
        from channels_app.services import inbound
        from crm.services.reminders import handle_reply

        # Answers to appointment reminders come before the bot sees the message.
        inbound.register_follow_up(handle_reply, order=inbound.ORDER_REPLIES)
