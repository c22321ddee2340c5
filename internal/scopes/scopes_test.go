package scopes

import (
	"slices"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"write": true, "memory.write": true, "https://api.example/x": true, "a!#[]~": true,
		"": false, "a b": false, `a"b`: false, `a\b`: false, "café": false, "a\x1b": false, "\x7f": false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v; want %v", s, got, want)
		}
	}
}

func TestUnion(t *testing.T) {
	got := Union([]string{"a", "b", "a"}, []string{"c", "b", "d"})
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("Union = %v; want %v", got, want)
	}
	if got := Union(nil, nil); len(got) != 0 {
		t.Errorf("Union(nil, nil) = %v", got)
	}
}

func TestAdded(t *testing.T) {
	for _, tt := range []struct {
		prev, next, want []string
	}{
		{nil, []string{"a", "b"}, []string{"a", "b"}},
		{[]string{"a"}, []string{"a", "b", "b"}, []string{"b"}},
		{[]string{"a", "b"}, []string{"b"}, nil},
	} {
		if got := Added(tt.prev, tt.next); !slices.Equal(got, tt.want) {
			t.Errorf("Added(%v, %v) = %v, want %v", tt.prev, tt.next, got, tt.want)
		}
	}
}
