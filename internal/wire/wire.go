// Package wire holds the two encoding rules every package of the module
// follows for text that leaves the process: JSON without HTML escaping, and
// server-supplied text cut down to printable characters.
package wire

import (
	"bytes"
	"encoding/json"
	"strings"
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

// Printable returns s without control characters, cut to limit runes (an
// ellipsis marks the cut) and trimmed of surrounding space. It is for text
// an authorization server sends that a page or an error repeats.
func Printable(s string, limit int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
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
