# reef — see README.md. `make run` starts a local cluster with demo data and opens
# the shell on it; `make test` runs vet and the race-enabled test suite.
GO      ?= go
BIN     := bin/reef
PKGS    := ./...

.PHONY: all build run test vet fmt lint bench pgo fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/reef

run: build
	./$(BIN) local --shell

# vet and the tests build without the profile the binary is optimized with
# (docs/pgo.md): with it, vet and the tests of cmd/reef would compile every package
# a second time, for nothing a test looks at.
vet:
	GOFLAGS="$(GOFLAGS) -pgo=off" $(GO) vet $(PKGS)

test: vet
	GOFLAGS="$(GOFLAGS) -pgo=off" $(GO) test -race -timeout 15m $(PKGS)

fmt:
	gofmt -l -w .

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./query/exec ./leaf ./shm ./testbench

# pgo profiles a local cluster under ingest and queries and writes the profile that
# every build of cmd/reef is optimized with (cmd/reef/default.pgo; docs/pgo.md).
pgo: build
	scripts/pgo-profile.sh

clean:
	rm -rf bin
