export APP_ENV=production
python manage.py migrate
uvicorn app.main:app --host 0.0.0.0 --port 8000
