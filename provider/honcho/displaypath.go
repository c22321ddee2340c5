package honcho

import (
	"path"
	"path/filepath"
	"strings"
)

// DisplayPath turns the absolute path of a config file into the form shown to
// a person and sent as the config_path authorization parameter: relative to
// home as "~/.hermes/profiles/work/honcho.json" when it is inside home, else
// only its base name ("honcho.json"). It never returns an absolute path, so
// the authorization server never learns the account's directory layout
// outside home. A path already of the "~/..." form is returned cleaned; ""
// stays "".
func DisplayPath(p, home string) string {
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if c := path.Clean(filepath.ToSlash(p)); c == "~" || strings.HasPrefix(c, "~/") {
			return c
		}
		return baseName(p)
	}
	if !filepath.IsAbs(p) {
		return baseName(p)
	}
	p = filepath.Clean(p)
	if home != "" && filepath.IsAbs(home) {
		rel, err := filepath.Rel(filepath.Clean(home), p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if rel == "." {
				return "~"
			}
			return "~/" + filepath.ToSlash(rel)
		}
	}
	return baseName(p)
}

// baseName is the last element of p, with either slash as separator.
func baseName(p string) string {
	p = strings.TrimRight(strings.ReplaceAll(p, `\`, "/"), "/")
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || p == "." || p == ".." || p == "~" {
		return ""
	}
	return p
}
