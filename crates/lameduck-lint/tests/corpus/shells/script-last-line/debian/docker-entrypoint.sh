#!/bin/sh
set -e
python manage.py migrate --noinput
gunicorn --bind 0.0.0.0:8000 app.wsgi:application
