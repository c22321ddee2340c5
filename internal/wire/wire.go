// Package wire holds the encoding rules every package of the module follows
// for text that leaves the process: JSON without HTML escaping, and
// server-supplied text made harmless before a page, a terminal or a log
// shows it.
//
// Harmless means that nothing in it acts: control characters (C0, DEL,
// C1) and Unicode format characters (the bidirectional controls U+202A to
// U+202E and U+2066 to U+2069, marks, zero-width characters) are dropped
// ([Printable]) or written as escapes ([Clean]). A server that sends
// "\x1b]0;title\x07" or "\u202e" cannot then clear a screen, set a window
// title, plant a hyperlink or reorder what a person reads.
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Marshal is [json.Marshal] without HTML escaping, so that a URL keeps its
// "&" (a person copies authorize_url from curl's output) and a config file
// keeps the bytes a person wrote.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Printable returns s without the characters that act (see the package
// doc) and without invalid UTF-8, cut to limit runes (an ellipsis marks the
// cut) and trimmed of surrounding space. It is for text an authorization
// server sends that a page or an error repeats.
func Printable(s string, limit int) string {
	var b strings.Builder
	n := 0
	for i, r := range s {
		if acts(r) || (r == utf8.RuneError && !validAt(s, i)) {
			continue
		}
		if n == limit {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// Clean returns s with every character that acts (see the package doc)
// written as a Go escape (\x1b, \u202e), and invalid UTF-8 as \xNN, so that
// a person sees what was sent and nothing happens. Other text, letters of
// any script included, is kept as it is. It is for a terminal and a log.
func Clean(s string) string {
	if harmless(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case acts(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case acts(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Short reports whether s is non-empty text of at most limit runes in
// which nothing acts: what [Clean] and [Printable] leave as it is, such as
// a device flow's user code must be.
func Short(s string, limit int) bool {
	return s != "" && utf8.RuneCountInString(s) <= limit && harmless(s) && strings.TrimSpace(s) == s
}

// harmless reports whether nothing in s acts and s is valid UTF-8.
func harmless(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			for j, r := range s[i:] {
				if acts(r) || (r == utf8.RuneError && !validAt(s[i:], j)) {
					return false
				}
			}
			return true
		}
	}
	return true
}

// validAt reports whether the RuneError decoded at s[i:] was written as
// U+FFFD rather than made of an invalid byte.
func validAt(s string, i int) bool {
	_, n := utf8.DecodeRuneInString(s[i:])
	return n > 1
}

// acts reports whether r may act on a terminal, or on the order of the
// text around it: a control or a format character, or a line or paragraph
// separator.
func acts(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// Terminal returns a writer that passes what is written to w with every
// character that acts (see the package doc) written as [Clean] writes it,
// but for newline and tab: a terminal, or a log read on one, then shows a
// server's text and nothing in it takes effect. A program's own cursor
// moves ("\r" to redraw a line) are written to w itself.
//
// Each Write is taken as whole text: a character split across two Writes
// is shown as escaped bytes.
func Terminal(w io.Writer) io.Writer { return terminal{w} }

type terminal struct{ w io.Writer }

func (t terminal) Write(p []byte) (int, error) {
	s := string(p)
	if harmlessText(s) {
		return t.w.Write(p)
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		body, nl := strings.CutSuffix(line, "\n")
		for i, part := range strings.Split(body, "\t") {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(Clean(part))
		}
		if nl {
			b.WriteByte('\n')
		}
	}
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// harmlessText is [harmless] allowing newline and tab.
func harmlessText(s string) bool {
	return harmless(strings.NewReplacer("\n", "", "\t", "").Replace(s))
}

// Redact replaces every occurrence of each non-empty secret in s with
// "[redacted]".
func Redact(s string, secrets ...string) string {
	for _, t := range secrets {
		if t != "" {
			s = strings.ReplaceAll(s, t, "[redacted]")
		}
	}
	return s
}
