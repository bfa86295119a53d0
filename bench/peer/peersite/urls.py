from django.urls import path

from peersite import views

urlpatterns = [
    path("api/health", views.Health.as_view()),
    path("api/account", views.Account.as_view()),
]
