"""Template tags of the bot: "why the bot said this" in the inbox, its notice on the dashboard."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def bot_sources(run) -> list[dict]:
    """The knowledge-base chunks a bot run sent the provider, with their documents' titles,
    in the order they were sent (a chunk deleted since is left out)."""
    from channels_app.bot.models import KnowledgeChunk

    if run is None or not run.chunk_ids:
        return []
    found = {
        row["id"]: row
        for row in KnowledgeChunk.objects.filter(pk__in=run.chunk_ids).values(
            "id", "document_id", "document__title", "position"
        )
    }
    return [found[pk] for pk in run.chunk_ids if pk in found]


@register.inclusion_tag("channels_app/bot/_dashboard_notice.html", takes_context=True)
def bot_dashboard_notice(context) -> dict:
    from channels_app.bot.views import bot_status

    return {"bot_status": bot_status(), "tenant": context.get("tenant")}
