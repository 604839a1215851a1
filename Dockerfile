# syntax=docker/dockerfile:1
# Multi-stage build: a static lwm2md on distroless, running as non-root.
#   docker build -t lwm2md .
#   docker run -p 5683:5683/udp -p 5684:5684/udp -p 8080:8080 -v lwm2md:/data \
#     -v $PWD/tokens:/etc/lwm2md/tokens:ro -e LWM2MD_API_TOKEN_FILE=/etc/lwm2md/tokens \
#     -e LWM2MD_HTTP_ADDR=0.0.0.0:8080 lwm2md
# (tokens: chown 65532 and chmod 600 it; the REST API serves a non-loopback
# address only with tokens.) `make docker-check` verifies what can be
# verified without a registry.
FROM golang:1.24-bookworm AS build
ARG VERSION=devel
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/lwm2md ./cmd/lwm2md
# /data must exist in the image, owned by nonroot: Docker creates a missing
# volume mount point as root, and a named volume copies the image's
# directory and its owner (else "open /data/registry.db: permission
# denied", checked by deploy/docker-check.sh).
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lwm2md /usr/local/bin/lwm2md
COPY --from=build --chown=65532:65532 /out/data /data
# The embedded store and the embedded NATS server keep their data here.
ENV LWM2MD_DATA_DIR=/data
VOLUME /data
# LwM2M (UDP, DTLS), bootstrap (UDP, DTLS), HTTP API and web UI, NATS.
EXPOSE 5683/udp 5684/udp 5783/udp 5784/udp 8080/tcp 4222/tcp
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/lwm2md"]
CMD ["serve"]
