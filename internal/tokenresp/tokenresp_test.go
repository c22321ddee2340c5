package tokenresp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		name, body, ct string
		wantIn         int64
		wantOdd        bool
		wantErr        string
	}{
		{"integer", `{"access_token":"a","refresh_token":"r","expires_in":3600}`, "application/json", 3600, false, ""},
		{"fraction", `{"access_token":"a","refresh_token":"r","expires_in":3600.5}`, "application/json", 3600, true, ""},
		{"string", `{"access_token":"a","refresh_token":"r","expires_in":"3600"}`, "application/json", 3600, true, ""},
		{"text", `{"access_token":"a","refresh_token":"r","expires_in":"abc"}`, "application/json", 3600, true, ""},
		{"object", `{"access_token":"a","expires_in":{}}`, "application/json", 3600, true, ""},
		{"negative", `{"access_token":"a","refresh_token":"r","expires_in":-30}`, "application/json", -30, false, ""},
		{"absent", `{"access_token":"a"}`, "", 3600, false, ""},
		{"huge", `{"access_token":"a","expires_in":1e300}`, "application/json", 3600, true, ""},
		{"form", `access_token=a&refresh_token=r&expires_in=60`, "application/x-www-form-urlencoded", 60, false, ""},
		{"no access token", `{"refresh_token":"r"}`, "application/json", 0, false, "no access_token"},
		{"not JSON", `<html>`, "text/html", 0, false, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, odd, err := Parse([]byte(tt.body), tt.ct, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "a" || tok.ExpiresIn != tt.wantIn || !tok.Expiry.Equal(now.Add(time.Duration(tt.wantIn)*time.Second)) {
				t.Errorf("token = %+v, want expires_in %d", tok, tt.wantIn)
			}
			if (odd != "") != tt.wantOdd {
				t.Errorf("odd = %q, want odd %v", odd, tt.wantOdd)
			}
		})
	}
	tok, _, err := Parse([]byte(`{"access_token":"a","config":{"peerName":"x"},"scope":"write"}`), "application/json", now)
	if err != nil || tok.Extra("scope") != "write" || tok.Extra("config").(map[string]any)["peerName"] != "x" {
		t.Errorf("extras = %v %v, %v", tok.Extra("scope"), tok.Extra("config"), err)
	}
}

// Capture sees a 2xx body before the caller does, keeps it, and hands the
// caller the same bytes; other answers pass through untouched.
func TestCapture(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			http.Error(w, `{"error":"slow_down"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","expires_in":"soon"}`)
	}))
	defer srv.Close()
	var seen []string
	cp := &Capture{OnSuccess: func(b []byte, ct string) { seen = append(seen, string(b)+" "+ct) }}
	c := cp.Client(srv.Client())
	for i, want := range []string{`{"error":"slow_down"}` + "\n", `{"access_token":"a","expires_in":"soon"}`} {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("request %d: caller read %q, want %q", i, b, want)
		}
	}
	if len(seen) != 1 || seen[0] != `{"access_token":"a","expires_in":"soon"} application/json` {
		t.Errorf("OnSuccess saw %q", seen)
	}
	if last := cp.Last(); last == nil || string(last.Body) != `{"access_token":"a","expires_in":"soon"}` {
		t.Errorf("Last = %+v", last)
	}
}

// TestClientFollowsNoRedirect: a token request (a code exchange, a device
// poll, a refresh) is never sent on to the origin a redirect names, and the
// client it was made from is left as it was.
func TestClientFollowsNoRedirect(t *testing.T) {
	var stolen atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	host := &http.Client{}
	c := (&Capture{}).Client(host)
	resp, err := c.PostForm(srv.URL+"/token", url.Values{"code": {"secret-code"}, "code_verifier": {"secret-verifier"}})
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a redirect was followed: %s", resp.Status)
	}
	if !strings.Contains(err.Error(), "never follows a redirect") {
		t.Errorf("err = %v; want the rule named", err)
	}
	if stolen.Load() != 0 {
		t.Errorf("the other origin received the request")
	}
	if host.CheckRedirect != nil || host.Transport != nil {
		t.Errorf("the host's client was changed")
	}
}

func TestRedact(t *testing.T) {
	body := []byte(`{"access_token":"at-secret","refresh_token":"rt-secret","expires_in":3600}`)
	for _, s := range []string{
		"insert failed: " + string(body),
		"insert of at-secret and rt-secret failed",
	} {
		got := Redact(s, body, "application/json")
		if strings.Contains(got, "at-secret") || strings.Contains(got, "rt-secret") {
			t.Errorf("Redact(%q) = %q; a token is left", s, got)
		}
	}
}
