package filestore

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets twice as many parallel tests run as there are CPUs, unless
// -test.parallel says otherwise: the parallel tests of this package spend
// most of their time waiting on child processes, a lock or a deadline.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0)))
	}
	os.Exit(m.Run())
}
