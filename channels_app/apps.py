from django.apps import AppConfig


class ChannelsAppConfig(AppConfig):
    name = "channels_app"
    verbose_name = "Channels and conversations"

    def ready(self):
        from channels_app.bot.pipeline import bot_follow_up
        from channels_app.services import inbound

        # The bot answers last: earlier handlers (appointment replies) may consume a message.
        inbound.register_follow_up(bot_follow_up, order=inbound.ORDER_BOT)
