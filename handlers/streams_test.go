package handlers

import (
	"errors"
	"testing"

	"github.com/memconnect/memconnect/events"
)

// TestSessionStreams: a session's streams and those of a profile's
// sessions are counted, refused past their caps, and given back once each.
func TestSessionStreams(t *testing.T) {
	var s sessionStreams
	bus := events.NewBus(events.PerProfile(12)) // sessions of a profile: 9
	var releases []func()
	for i := range MaxStreamsPerSession {
		release, err := s.acquire("one", "work", bus)
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		releases = append(releases, release)
	}
	if _, err := s.acquire("one", "work", bus); !errors.Is(err, events.ErrTooManySubscribers) {
		t.Fatalf("one more for the session: %v; want ErrTooManySubscribers", err)
	}
	if _, err := s.acquire("two", "work", bus); err != nil {
		t.Fatalf("another session, the profile's ninth: %v", err)
	}
	if _, err := s.acquire("three", "work", bus); !errors.Is(err, events.ErrTooManySubscribers) {
		t.Fatalf("a tenth for the profile's sessions: %v; want ErrTooManySubscribers", err)
	}
	if _, err := s.acquire("three", "home", bus); err != nil {
		t.Fatalf("another profile: %v", err)
	}
	releases[0]()
	releases[0]() // once only
	if _, err := s.acquire("one", "work", bus); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := s.acquire("four", "work", bus); !errors.Is(err, events.ErrTooManySubscribers) {
		t.Fatalf("a release given back twice: %v", err)
	}
}
