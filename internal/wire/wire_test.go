package wire

import (
	"strings"
	"testing"
)

// hostile are texts a hostile server may send, with what Clean shows.
var hostile = []struct {
	name, in, clean string
}{
	{"plain", "WDJB-MJHT", "WDJB-MJHT"},
	{"letters of any script", "Zoë 東京", "Zoë 東京"},
	{"escape sequence", "\x1b[2J\x1b[HRun: curl", `\x1b[2J\x1b[HRun: curl`},
	{"window title (OSC)", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
	{"hyperlink (OSC 8)", "\x1b]8;;https://evil.example\x1b\\here", `\x1b]8;;https://evil.example\x1b\here`},
	{"C1 control", "a\u009bb", `a\x9bb`},
	{"bidi override", "abc\u202edcba", `abc\u202edcba`},
	{"bidi isolate", "\u2066x\u2069", `\u2066x\u2069`},
	{"zero width", "a\u200bb", `a\u200bb`},
	{"line breaks", "a\r\nb\u2028", `a\x0d\x0ab\u2028`},
	{"invalid UTF-8", "a\xffb", `a\xffb`},
	{"a written U+FFFD", "a\ufffdb", "a\ufffdb"},
}

func TestClean(t *testing.T) {
	for _, tt := range hostile {
		got := Clean(tt.in)
		if got != tt.clean {
			t.Errorf("%s: Clean(%q) = %q; want %q", tt.name, tt.in, got, tt.clean)
		}
		if !harmless(got) {
			t.Errorf("%s: Clean left something that acts: %q", tt.name, got)
		}
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range hostile {
		if got := Printable(tt.in, 100); !harmless(got) || strings.ContainsAny(got, "\x1b\x07") {
			t.Errorf("%s: Printable(%q) = %q; something in it acts", tt.name, tt.in, got)
		}
	}
	if got := Printable("abcdef ", 3); got != "abc…" {
		t.Errorf("Printable cut = %q; want abc…", got)
	}
	if got := Printable("abc\u202edef", 10); got != "abcdef" {
		t.Errorf("Printable = %q; want the override dropped", got)
	}
}

func TestShort(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"WDJB-MJHT", true},
		{"", false},
		{" WDJB", false},
		{"\x1b[2J", false},
		{"ab\u202e", false},
		{"a\xffb", false},
		{strings.Repeat("A", 33), false},
		{strings.Repeat("A", 32), true},
	}
	for _, tt := range tests {
		if got := Short(tt.in, 32); got != tt.want {
			t.Errorf("Short(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestTerminal(t *testing.T) {
	var b strings.Builder
	w := Terminal(&b)
	for _, tt := range hostile {
		b.Reset()
		n, err := w.Write([]byte("code:\t" + tt.in + "\n"))
		if err != nil || n != len("code:\t"+tt.in+"\n") {
			t.Fatalf("Write = %d, %v", n, err)
		}
		// A newline passes: the terminal's own line breaks.
		if want := "code:\t" + strings.ReplaceAll(tt.clean, `\x0a`, "\n") + "\n"; b.String() != want {
			t.Errorf("%s: wrote %q; want %q", tt.name, b.String(), want)
		}
	}
}
