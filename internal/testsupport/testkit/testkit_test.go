package testkit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { fmt.Fprintf(&b, "%d;", i) })
	}
	wg.Wait()
	if got := len(b.String()); got != 16 {
		t.Fatalf("wrote %d bytes, want 16: %q", got, b.String())
	}
}

func TestClock(t *testing.T) {
	c := NewClock()
	if !c.Now().Equal(Start) {
		t.Fatalf("Now = %v, want %v", c.Now(), Start)
	}
	c.Advance(90 * time.Second)
	if got := c.Now().Sub(Start); got != 90*time.Second {
		t.Fatalf("advanced %v, want 90s", got)
	}
}
