package events_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
)

var (
	work  = connid.ID{Profile: "work", Provider: "honcho"}
	other = connid.ID{Profile: "default", Provider: "honcho"}
)

func connection(key connid.ID, what string) events.Event {
	return events.Event{Key: key, Kind: events.KindConnection, Connection: what}
}

// drain returns what the subscription holds now.
func drain(s *events.Subscription) []string {
	var got []string
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return append(got, "closed")
			}
			got = append(got, fmt.Sprintf("%d %s", ev.ID, ev.Connection))
		default:
			return got
		}
	}
}

func TestBus(t *testing.T) {
	bus := events.NewBus(events.MaxSubscribers(2))
	a, err := bus.Subscribe(work, 0)
	if err != nil {
		t.Fatal(err)
	}
	bus.Publish(connection(work, events.Connected))
	bus.Publish(connection(other, events.Connected)) // another key: not a's
	bus.Publish(connection(work, events.Refreshed))
	if got := drain(a); fmt.Sprint(got) != "[1 connected 3 refreshed]" {
		t.Errorf("a got %v, want the events of its key only", got)
	}
	// Resuming after event 1 replays 3, and only for the key.
	b, err := bus.Subscribe(work, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(b); fmt.Sprint(got) != "[3 refreshed]" {
		t.Errorf("resumed after 1: %v", got)
	}
	if _, err := bus.Subscribe(work, 0); !errors.Is(err, events.ErrTooManySubscribers) {
		t.Errorf("a third subscriber: %v, want ErrTooManySubscribers", err)
	}
	b.Close()
	b.Close() // idempotent
	if got := drain(b); fmt.Sprint(got) != "[closed]" {
		t.Errorf("after Close: %v", got)
	}
	if _, err := bus.Subscribe(other, 0); err != nil {
		t.Errorf("a place freed by Close: %v", err)
	}
}

// A subscriber that falls Buffer events behind is dropped; the bus and the
// other subscribers go on.
func TestSlowSubscriberDropped(t *testing.T) {
	bus := events.NewBus()
	slow, _ := bus.Subscribe(work, 0)
	fast, _ := bus.Subscribe(work, 0)
	for i := range events.Buffer + 1 {
		bus.Publish(connection(work, events.Refreshed))
		if i < events.Buffer {
			<-fast.Events()
		}
	}
	if !slow.Dropped() {
		t.Fatal("the slow subscriber was not dropped")
	}
	n := 0
	for range slow.Events() { // closed after what it holds
		n++
	}
	if n != events.Buffer {
		t.Errorf("the slow subscriber got %d events before the end, want %d", n, events.Buffer)
	}
	if fast.Dropped() {
		t.Error("the subscriber that kept up was dropped")
	}
	if ev := <-fast.Events(); ev.ID != events.Buffer+1 {
		t.Errorf("fast got event %d, want %d", ev.ID, events.Buffer+1)
	}
}

// A subscriber that resumes after more events than Buffer is dropped at
// once, with the first Buffer of them to read.
func TestResumeBeyondBuffer(t *testing.T) {
	bus := events.NewBus()
	for range events.Buffer + 10 {
		bus.Publish(connection(work, events.Refreshed))
	}
	s, err := bus.Subscribe(work, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range s.Events() {
		n++
	}
	if n != events.Buffer || !s.Dropped() {
		t.Errorf("got %d events, dropped %v; want %d and dropped", n, s.Dropped(), events.Buffer)
	}
	s.Close() // after a drop: harmless
}
