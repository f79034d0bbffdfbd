from django.urls import path

from crm.views import deals
from tenants.views import section_placeholder

urlpatterns = [
    path("deals/", section_placeholder("deals"), name="deals"),
    path("deals/<int:deal_id>/", deals.deal_detail, name="deal"),
]
