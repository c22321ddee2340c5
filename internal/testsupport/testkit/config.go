package testkit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes data to path with mode 0600, creating its directory.
func WriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WriteJSON writes v to path as indented JSON, as [WriteFile] does.
func WriteJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, path, string(b))
}

// ReadJSON parses the JSON object in the file at path. Numbers are
// [json.Number], so that none loses a digit.
func ReadJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, data)
	}
	return v
}

// HostBlock returns hosts[host] of a parsed honcho.json, or nil.
func HostBlock(config map[string]any, host string) map[string]any {
	hosts, _ := config["hosts"].(map[string]any)
	b, _ := hosts[host].(map[string]any)
	return b
}

// Redirecting is a server answering every request with 307 to target (the
// same path), closed when t ends.
func Redirecting(t testing.TB, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv
}
