package memconnect_test

import (
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
)

// prefix is where the tests' host router mounts memconnect.
const prefix = fixture.Prefix
