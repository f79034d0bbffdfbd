"""The knowledge-base pages (`channels` namespace, under /app/<tenant_slug>/bot/knowledge/)."""

from django.urls import path

from channels_app.bot import views

urlpatterns = [
    path("", views.knowledge_base, name="knowledge"),
    path("<int:knowledge_document_id>/", views.knowledge_document, name="knowledge_document"),
    path(
        "<int:knowledge_document_id>/delete/",
        views.knowledge_document_delete,
        name="knowledge_document_delete",
    ),
]
