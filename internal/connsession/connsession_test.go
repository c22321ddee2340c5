package connsession

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMintVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	old, _ := New([][]byte{k1})
	rotated, _ := New([][]byte{k2, k1})
	other, _ := New([][]byte{k2})
	c := Claims{Profile: "work", Providers: []string{"honcho"}, Issued: now.Unix(), Expires: now.Add(time.Minute).Unix()}
	tok := old.Mint(c)
	// Signed with the real key, but beyond the maximum, without an issue
	// time, or issued in the future.
	long := old.Mint(Claims{Profile: "work", Issued: now.Unix(), Expires: now.Add(5 * time.Hour).Unix()})
	noIssue := old.Mint(Claims{Profile: "work", Expires: now.Add(time.Minute).Unix()})
	future := old.Mint(Claims{Profile: "work", Issued: now.Add(time.Hour).Unix(), Expires: now.Add(2 * time.Hour).Unix()})
	if !Is(tok) || strings.Contains(tok, "work") {
		t.Fatalf("token %q: want the prefix and nothing readable at a glance", tok)
	}
	tests := []struct {
		name string
		keys *Keys
		tok  string
		at   time.Time
		want error
	}{
		{"same key", old, tok, now, nil},
		{"after a rotation", rotated, tok, now, nil},
		{"another key", other, tok, now, ErrInvalid},
		{"expired", old, tok, now.Add(time.Minute), ErrExpired},
		{"tampered payload", old, strings.Replace(tok, tok[6:10], "AAAA", 1), now, ErrInvalid},
		{"tampered signature", old, tok[:len(tok)-2] + "AA", now, ErrInvalid},
		{"no signature", old, strings.SplitN(tok, ".", 3)[0] + "." + strings.SplitN(tok, ".", 3)[1], now, ErrInvalid},
		{"not a session", old, "static-token", now, ErrInvalid},
		{"longer than the maximum", old, long, now, ErrInvalid},
		{"no issue time", old, noIssue, now, ErrInvalid},
		{"issued in the future", old, future, now, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Verify(tt.tok, tt.at, 4*time.Hour)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %+v, %v; want %v", got, err, tt.want)
			}
			if err == nil && (got.Profile != "work" || len(got.Providers) != 1 || got.Issued != now.Unix()) {
				t.Errorf("claims = %+v", got)
			}
		})
	}
	if _, err := New([][]byte{[]byte("short")}); err == nil {
		t.Error("a short key was accepted")
	}
}
