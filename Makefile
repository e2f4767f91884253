# The README's two commands: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.PHONY: run test deps build release bench clean

deps:
	@scripts/install-deps.sh

build: deps
	swift build

release: deps
	swift build -c release

# Builds and starts the gateway on the embedded memory backend with an in-process demo agent.
# More flags go in ARGS: make run ARGS="--port 8080 --log-level debug".
run: deps
	swift build -c release --product switchboard
	.build/release/switchboard serve $(ARGS)

# Starts a private redis-server on a free loopback port, runs every test (Redis included),
# then the interop tests with real third-party clients, and stops the server.
test: deps
	@scripts/test.sh

clean:
	rm -rf .build .build-* .venv
