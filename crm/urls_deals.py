from django.urls import path

from crm.views import deals

urlpatterns = [
    path("deals/", deals.deals, name="deals"),
    path("deals/new/", deals.deal_new, name="deal_new"),
    path("deals/<int:deal_id>/", deals.deal_detail, name="deal"),
    path("deals/<int:deal_id>/edit/", deals.deal_edit, name="deal_edit"),
    path("deals/<int:deal_id>/move/", deals.deal_move, name="deal_move"),
    path("deals/<int:deal_id>/delete/", deals.deal_delete, name="deal_delete"),
    path("deals/pipelines/", deals.pipelines, name="pipelines"),
    path("deals/pipelines/<int:pipeline_id>/", deals.pipeline, name="pipeline"),
    path("deals/pipelines/<int:pipeline_id>/board/", deals.pipeline_board, name="pipeline_board"),
    path(
        "deals/pipelines/<int:pipeline_id>/delete/", deals.pipeline_delete, name="pipeline_delete"
    ),
    path("deals/pipelines/<int:pipeline_id>/stages/", deals.stage_add, name="stage_add"),
    path("deals/stages/<int:stage_id>/", deals.stage_edit, name="stage_edit"),
]
