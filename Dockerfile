# Multi-stage: build wheels once, run from a slim image as an unprivileged user.
FROM python:3.13-slim AS build
WORKDIR /build
COPY requirements.txt requirements-nodeps.txt requirements-build.txt ./
RUN pip wheel --wheel-dir /wheels -r requirements.txt \
    && pip wheel --no-deps --wheel-dir /wheels -r requirements-nodeps.txt
# The compiled core (markets/core/_book.pyx), built here with gcc; the runtime gets the .so only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir -r requirements-build.txt
COPY setup.py ./
COPY markets/core/_book.pyx markets/core/
RUN python setup.py --quiet build_ext --inplace

FROM python:3.13-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 desk
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/* && rm -rf /wheels
WORKDIR /app
COPY . .
COPY --from=build /build/markets/core/*.so markets/core/
# The manifest (staticfiles.json) is built by the production storage, so not in debug; the
# settings refuse to load without a secret key, and this dummy one lives only in this step.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only-never-used-to-sign-anything \
    python manage.py collectstatic --no-input
USER desk
EXPOSE 8000 9100
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "arbsite.asgi:application"]
