package testkit

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// RunWaiting runs m with twice as many parallel tests at once as there are
// CPUs, unless -test.parallel says otherwise, and exits with its code. It
// is TestMain for a package whose parallel tests spend most of their time
// waiting on child processes, a lock or a deadline, rather than computing.
func RunWaiting(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0)))
	}
	os.Exit(m.Run())
}
