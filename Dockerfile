# Conference gateway: REST API and pages (HTTP), SIP over UDP and TCP, RTP media.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HTTP_HOST=0.0.0.0 \
    GATEWAY_SIP_HOST=0.0.0.0 \
    GATEWAY_DATABASE_URL=sqlite:////data/gateway.db

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY rooms ./rooms
COPY sip ./sip
COPY dtmf ./dtmf
COPY webrtc ./webrtc
COPY gateway ./gateway
COPY api ./api
RUN pip install --no-cache-dir . && mkdir -p /data && chown nobody:nogroup /data

VOLUME ["/data"]
# HTTP (REST and join pages), SIP (UDP and TCP), RTP media range.
EXPOSE 8080/tcp 5060/udp 5060/tcp 20000-29999/udp

USER nobody
CMD ["python", "-m", "gateway"]
