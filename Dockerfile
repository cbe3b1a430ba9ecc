FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HOTLINE_HOST=0.0.0.0 HOTLINE_DATA_DIR=/data HOTLINE_LOG_JSON=true
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY channels channels
COPY nlu nlu
COPY bot bot
COPY ticket_client ticket_client
COPY config config
RUN pip install . && useradd --system --home /data hotline && mkdir -p /data/media && chown -R hotline /data
USER hotline
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["hotline", "serve"]
