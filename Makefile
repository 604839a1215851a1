# lwm2md build targets. `make` builds both commands into bin/; `make
# release` cross-builds static binaries for linux/amd64 and linux/arm64
# into dist/ with SHA-256 sums; `make test` is the README's test command;
# `make docker` builds the image, `make docker-check` checks what it relies
# on where no registry is reachable (deploy/docker-check.sh).

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X main.buildVersion=$(VERSION)
CMDS    := lwm2md lwm2m-sim lwm2mctl
PLATFORMS := linux/amd64 linux/arm64

.PHONY: all build test release docker docker-check clean

all: build

build:
	@mkdir -p bin
	@for c in $(CMDS); do \
		if [ -d cmd/$$c ]; then CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/$$c ./cmd/$$c || exit 1; fi; \
	done

test:
	go test -race ./...

release:
	@mkdir -p dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		for c in $(CMDS); do \
			[ -d cmd/$$c ] || continue; \
			out=dist/$$c-$(VERSION)-$$os-$$arch; \
			echo "build $$out"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/$$c || exit 1; \
		done; \
	done
	@cd dist && sha256sum lwm2m*-$(VERSION)-* > SHA256SUMS && cat SHA256SUMS

docker:
	docker build -t lwm2md:$(VERSION) --build-arg VERSION=$(VERSION) .

# docker-check verifies without a registry what the image relies on: the
# Dockerfile's build command gives a static binary that serves as uid
# 65532 from an empty root (and, when a Docker daemon answers, from a FROM
# scratch image with a volume on /data). Needs root (chroot), curl, file.
docker-check:
	VERSION=$(VERSION) sh deploy/docker-check.sh

clean:
	rm -rf bin dist
