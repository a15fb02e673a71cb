"""A minimal Django project serving django-push-notifications for ``make bench``."""
