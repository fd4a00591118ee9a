# hiveq: one image for the API and the workers (the command picks the role).
#   docker build -t hiveq .
#   docker run --rm -e REDIS_URL=redis://redis:6379/0 hiveq worker
# Your own agents: a derived image. `hiveq worker` runs in /home/hiveq and imports
# --module / HIVEQ_AGENT_MODULES from its current directory first:
#   FROM hiveq:latest
#   COPY my_agents.py /home/hiveq/
#   ENV HIVEQ_AGENT_MODULES=my_agents
# (a package with dependencies: USER root, COPY it, RUN pip install it, USER hiveq).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user owns nothing but its home; the code is read-only for it.
RUN groupadd --system hiveq && useradd --system --gid hiveq --create-home --home-dir /home/hiveq hiveq

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hiveq ./hiveq
# The `llm` extra brings the OpenAI SDK for the llm planner and agent; `reload` brings watchfiles
# for compose.dev.yaml. Both are small.
RUN pip install ".[llm,reload]"

USER hiveq
WORKDIR /home/hiveq
EXPOSE 8001
ENTRYPOINT ["hiveq"]
CMD ["--help"]
