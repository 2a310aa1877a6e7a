# The mesos-gpu scheduler image: the image universe-package/resource.json names, run by Marathon in the
# Mesos containerizer (`mesos-gpu scheduler`, configured by the MESOS_GPU_* environment).
#
# Build (from the repository root; the tag must match universe-package/resource.json):
#   docker build -t mesosgpu/mesos-gpu-scheduler:0.1.0 .
# See docs/dcos.md for pushing it to a registry the cluster can reach.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# The package (the sources .dockerignore lets through; pymesos and its compat http_parser ship inside it,
# see third_party/pymesos/README.md), and nothing of the build is kept.
COPY . .
RUN pip install . \
    && cd / && rm -rf /src \
    && mesos-gpu --version

# A user of its own. On DC/OS, Marathon's `user` field (the package's service.user, "nobody" by default)
# decides the user instead; either way the scheduler never runs as root.
RUN groupadd --system --gid 10001 mesos-gpu \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/mesos-gpu mesos-gpu
USER 10001:10001
WORKDIR /home/mesos-gpu

# The REST API (Marathon gives the real port in PORT0 / PORT_API; 8080 is the default elsewhere).
EXPOSE 8080

LABEL org.opencontainers.image.title="mesos-gpu scheduler" \
      org.opencontainers.image.description="Apache Mesos framework for GPU TensorFlow jobs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"

CMD ["mesos-gpu", "scheduler"]
