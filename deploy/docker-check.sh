#!/bin/sh
# docker-check: verifies what the Dockerfile's image relies on, as far as
# this machine allows (`make docker-check`).
#
#  1. The build stage's command line, taken from the Dockerfile itself,
#     yields a static binary (no dynamic loader, no libc).
#  2. That binary, alone in an empty root with /data owned by the image's
#     non-root user (65532, distroless "nonroot"), runs as that user:
#     `version`, then `serve` with every listener on loopback, until
#     /healthz and /readyz answer 200 and the embedded store and NATS have
#     written under /data; SIGTERM stops it cleanly.
#  3. When a Docker daemon answers, the same root as a FROM scratch image
#     run by Docker with a named volume on /data (the Dockerfile's final
#     stage without the distroless base, which needs a registry).
#
# Not verified here: that the base images can be pulled and the
# Dockerfile's own two stages build (run `make docker` where a registry
# is reachable).
set -eu

cd "$(dirname "$0")/.."
VERSION=${VERSION:-docker-check}
UID_NONROOT=65532
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "docker-check: FAIL: $*" >&2; exit 1; }

# 1. The Dockerfile's build command, with its output moved into our root.
build=$(sed -n 's/^RUN \(CGO_ENABLED=0 go build .*\)$/\1/p' Dockerfile)
[ -n "$build" ] || fail "no 'RUN CGO_ENABLED=0 go build' line in the Dockerfile"
mkdir -p "$tmp/root/usr/local/bin" "$tmp/root/data"
build=$(printf '%s' "$build" | sed "s#/out/lwm2md#$tmp/root/usr/local/bin/lwm2md#; s#\${VERSION}#$VERSION#")
echo "build: $build"
sh -c "$build"
bin=$tmp/root/usr/local/bin/lwm2md
file "$bin" | grep -q 'statically linked' || fail "not static: $(file "$bin")"
if ldd "$bin" >/dev/null 2>&1; then fail "ldd lists libraries: $(ldd "$bin")"; fi
echo "ok: static binary ($(file -b "$bin" | cut -d, -f1-2))"

grep -q "^COPY --from=build --chown=$UID_NONROOT:$UID_NONROOT /out/data /data\$" Dockerfile ||
	fail "the Dockerfile does not give /data to uid $UID_NONROOT"

# 2. An empty root: only the binary and /data, owned by the non-root user
# as in the final stage.
chown "$UID_NONROOT:$UID_NONROOT" "$tmp/root/data"
run_root() { chroot --userspec="$UID_NONROOT:$UID_NONROOT" "$tmp/root" /usr/local/bin/lwm2md "$@"; }
out=$(run_root version) || fail "version in the empty root"
echo "ok: as uid $UID_NONROOT in an empty root: $out"

# serve logs the addresses it bound; wait for the HTTP one.
export LWM2MD_DATA_DIR=/data LWM2MD_LOG_FORMAT=json LWM2MD_HTTP_ADDR=127.0.0.1:0 \
	LWM2MD_COAP_ADDR=127.0.0.1:0 LWM2MD_COAPS_ADDR=127.0.0.1:0 LWM2MD_BS_COAP_ADDR=127.0.0.1:0 \
	LWM2MD_BS_COAPS_ADDR=127.0.0.1:0 LWM2MD_NATS_ADDR=127.0.0.1:0
# chroot execs lwm2md: $! is the server's own pid.
chroot --userspec="$UID_NONROOT:$UID_NONROOT" "$tmp/root" /usr/local/bin/lwm2md serve >"$tmp/serve.log" 2>&1 &
pid=$!
http=
for _ in $(seq 100); do
	http=$(sed -n 's/.*"msg":"http listening".*"addr":"\([^"]*\)".*/\1/p' "$tmp/serve.log" | head -1)
	[ -n "$http" ] && break
	kill -0 "$pid" 2>/dev/null || fail "serve exited: $(cat "$tmp/serve.log")"
	sleep 0.1
done
[ -n "$http" ] || fail "no 'http listening' line: $(cat "$tmp/serve.log")"
check() {
	for _ in $(seq 50); do
		if curl -fsS "http://$http$1" >"$tmp/body" 2>/dev/null; then
			echo "ok: GET $1: $(tr -d '\n' <"$tmp/body")"
			return
		fi
		sleep 0.1
	done
	fail "GET $1: $(curl -sS "http://$http$1" 2>&1)"
}
check /healthz
check /readyz
owner=$(stat -c %u "$tmp/root/data/registry.db" 2>/dev/null) || fail "no store in /data: $(ls -la "$tmp/root/data")"
[ "$owner" = "$UID_NONROOT" ] || fail "the store belongs to uid $owner"
[ -d "$tmp/root/data/nats" ] || fail "the embedded NATS wrote nothing in /data/nats"
ps -o uid= -p "$pid" | grep -qw "$UID_NONROOT" || fail "serve does not run as uid $UID_NONROOT"
kill -TERM "$pid"
wait "$pid" || fail "serve exited $? on SIGTERM: $(tail -5 "$tmp/serve.log")"
pid=
grep -q '"msg":"lwm2md stopped"' "$tmp/serve.log" || fail "no clean stop: $(tail -5 "$tmp/serve.log")"
echo "ok: serve as uid $UID_NONROOT: /healthz and /readyz 200, store and NATS data in /data, clean stop on SIGTERM"

# 3. Docker, when a daemon answers.
if ! docker info >/dev/null 2>&1; then
	echo "skipped: no Docker daemon answers (docker info); steps 1-2 stand in for the image"
	exit 0
fi
img=lwm2md-docker-check:$VERSION
vol=lwm2md-docker-check-$$
cat >"$tmp/root/Dockerfile" <<EOF
FROM scratch
COPY --chown=$UID_NONROOT:$UID_NONROOT data /data
COPY usr/local/bin/lwm2md /usr/local/bin/lwm2md
ENV LWM2MD_DATA_DIR=/data
VOLUME /data
USER $UID_NONROOT:$UID_NONROOT
ENTRYPOINT ["/usr/local/bin/lwm2md"]
CMD ["serve"]
EOF
rm -rf "$tmp/root/data" && mkdir "$tmp/root/data"
docker build -q -t "$img" "$tmp/root" >/dev/null
docker run --rm "$img" version
cid=$(docker run -d --network host -v "$vol:/data" -e LWM2MD_LOG_FORMAT=json -e LWM2MD_HTTP_ADDR=127.0.0.1:0 \
	-e LWM2MD_COAP_ADDR=127.0.0.1:0 -e LWM2MD_COAPS_ADDR=127.0.0.1:0 -e LWM2MD_BS_COAP_ADDR=127.0.0.1:0 \
	-e LWM2MD_BS_COAPS_ADDR=127.0.0.1:0 -e LWM2MD_NATS_ADDR=127.0.0.1:0 "$img")
http=
for _ in $(seq 100); do
	http=$(docker logs "$cid" 2>&1 | sed -n 's/.*"msg":"http listening".*"addr":"\([^"]*\)".*/\1/p' | head -1)
	[ -n "$http" ] && break
	sleep 0.1
done
[ -n "$http" ] || { docker logs "$cid"; docker rm -f "$cid" >/dev/null; fail "no 'http listening' in the container"; }
check /readyz
docker stop -t 20 "$cid" >/dev/null
docker logs "$cid" 2>&1 | grep -q '"msg":"lwm2md stopped"' || fail "no clean stop in the container"
docker rm "$cid" >/dev/null
docker volume rm "$vol" >/dev/null
docker rmi "$img" >/dev/null
echo "ok: docker: FROM scratch image as uid $UID_NONROOT with a named volume on /data: version, /readyz 200, clean stop"
