package oauth

import (
	"testing"
	"time"
)

func TestRefreshSkew(t *testing.T) {
	exp := time.Unix(1767225600, 0)
	tests := []struct {
		name      string
		firstSeen time.Time // when the process first saw the token; zero: it is the first token of the key it sees
		now       time.Time
		want      bool
	}{
		{"well before", time.Time{}, exp.Add(-time.Hour), false},
		{"one second before the skew", time.Time{}, exp.Add(-RefreshSkew - time.Second), false},
		{"at the skew boundary", time.Time{}, exp.Add(-RefreshSkew), true},
		{"inside the skew", time.Time{}, exp.Add(-time.Minute), true},
		{"expired", time.Time{}, exp.Add(time.Minute), true},
		{"replacing token of an hour, inside the skew", exp.Add(-time.Hour), exp.Add(-time.Minute), true},
		{"replacing token of 60 s, fresh", exp.Add(-time.Minute), exp.Add(-time.Minute), false},
		{"replacing token of 60 s, 31 s left", exp.Add(-time.Minute), exp.Add(-31 * time.Second), false},
		{"replacing token of 60 s, half its life left", exp.Add(-time.Minute), exp.Add(-30 * time.Second), true},
		{"replacing token first seen expired", exp.Add(time.Second), exp.Add(time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Grant{AccessToken: "hch-at-x", Expiry: exp}
			k := &keyState{}
			if !tt.firstSeen.IsZero() {
				k.due(&Grant{AccessToken: "hch-at-before", Expiry: exp.Add(-time.Hour)}, tt.firstSeen)
				k.due(g, tt.firstSeen)
			}
			if got := k.due(g, tt.now); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}
