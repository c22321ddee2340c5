# memconnect: `make test` is the one command that runs every test.
GO ?= go

.PHONY: test vet unit bench

test: vet unit

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
