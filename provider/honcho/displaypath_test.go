package honcho_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/provider/honcho"
)

func TestDisplayPath(t *testing.T) {
	tests := []struct {
		path, home, want string
	}{
		{"/home/alice/.hermes/profiles/work/honcho.json", "/home/alice", "~/.hermes/profiles/work/honcho.json"},
		{"/home/alice/.hermes/honcho.json", "/home/alice/", "~/.hermes/honcho.json"},
		{"/home/alice/../alice/.honcho/config.json", "/home/alice", "~/.honcho/config.json"},
		{"/etc/hermes/honcho.json", "/home/alice", "honcho.json"},
		{"/home/alicex/honcho.json", "/home/alice", "honcho.json"},
		{"/home/alice/honcho.json", "", "honcho.json"},
		{"~/.hermes/honcho.json", "/home/alice", "~/.hermes/honcho.json"},
		{"~/../etc/honcho.json", "/home/alice", "honcho.json"},
		{"relative/honcho.json", "/home/alice", "honcho.json"},
		{`C:\Users\alice\.hermes\honcho.json`, "/home/alice", "honcho.json"},
		{"", "/home/alice", ""},
	}
	for _, tc := range tests {
		got := honcho.DisplayPath(tc.path, tc.home)
		if got != tc.want {
			t.Errorf("DisplayPath(%q, %q) = %q, want %q", tc.path, tc.home, got, tc.want)
		}
		if strings.HasPrefix(got, "/") {
			t.Errorf("DisplayPath(%q, %q) is absolute", tc.path, tc.home)
		}
	}
}

func ExampleDisplayPath() {
	fmt.Println(honcho.DisplayPath("/home/alice/.hermes/profiles/work/honcho.json", "/home/alice"))
	fmt.Println(honcho.DisplayPath("/etc/hermes/honcho.json", "/home/alice"))
	// Output:
	// ~/.hermes/profiles/work/honcho.json
	// honcho.json
}
