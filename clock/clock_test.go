package clock_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/memconnect/memconnect/clock"
)

func TestSystemAndFunc(t *testing.T) {
	before := time.Now()
	if now := clock.Or(nil).Now(); now.Before(before) {
		t.Errorf("Or(nil).Now() = %v, before %v", now, before)
	}
	fired := make(chan struct{})
	stop := clock.System().AfterFunc(time.Millisecond, func() { close(fired) })
	<-fired
	if stop() {
		t.Error("stop reported stopping a function that ran")
	}
	at := time.Date(2026, 12, 6, 10, 42, 0, 0, time.UTC)
	c := clock.Func(func() time.Time { return at })
	if !c.Now().Equal(at) || !clock.Or(c).Now().Equal(at) {
		t.Errorf("Func clock says %v", c.Now())
	}
	if clock.Func(time.Now).AfterFunc(time.Hour, func() {})() != true {
		t.Error("stop of a pending function reported false")
	}
}

// A clock a day ahead, for a test that looks into the future.
func ExampleFunc() {
	ahead := clock.Func(func() time.Time { return time.Now().Add(24 * time.Hour) })
	fmt.Println(ahead.Now().After(time.Now()))
	// Output: true
}
