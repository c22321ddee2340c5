package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/memconnect/memconnect/internal/wire"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// object is a JSON object that keeps its keys in file order and its values as
// the exact bytes it read, so a read-modify-write changes only what it sets.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

func newObject() *object { return &object{vals: make(map[string]json.RawMessage)} }

// parseObject parses data as one JSON object. An empty (or all-white-space)
// input is an empty object; a leading UTF-8 byte order mark is ignored.
func parseObject(data []byte) (*object, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		return newObject(), nil
	}
	if !json.Valid(data) {
		// json.Unmarshal gives the offset of the first syntax error.
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("not valid JSON at line %d, column %d: %s", line, col, se.Error())
		}
		return nil, errors.New("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("the top level is not a JSON object")
	}
	o := newObject()
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		key, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		o.set(key, raw)
	}
	return o, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col = 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func (o *object) get(key string) (json.RawMessage, bool) {
	v, ok := o.vals[key]
	return v, ok
}

// set stores raw under key, keeping the key's place if it exists.
func (o *object) set(key string, raw json.RawMessage) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = raw
}

// setValue marshals v and stores it under key.
func (o *object) setValue(key string, v any) error {
	raw, err := marshalValue(v)
	if err != nil {
		return err
	}
	o.set(key, raw)
	return nil
}

func (o *object) delete(key string) bool {
	if _, ok := o.vals[key]; !ok {
		return false
	}
	delete(o.vals, key)
	for i, k := range o.keys {
		if k == key {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
	return true
}

// child returns the object stored under key, or nil when the key is absent
// or does not hold an object.
func (o *object) child(key string) *object {
	raw, ok := o.vals[key]
	if !ok || !isObject(raw) {
		return nil
	}
	c, err := parseObject(raw)
	if err != nil {
		return nil
	}
	return c
}

// childOrNew returns the object stored under key, or a new empty one.
func (o *object) childOrNew(key string) *object {
	if c := o.child(key); c != nil {
		return c
	}
	return newObject()
}

// setChild stores c under key.
func (o *object) setChild(key string, c *object) {
	o.set(key, c.compact())
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// compact renders o on one line; values keep their bytes.
func (o *object) compact() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := marshalValue(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// marshal renders o as the Python agent does: two-space indent and a final
// newline. Key order is kept.
func (o *object) marshal() ([]byte, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, o.compact(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// marshalValue is json.Marshal without HTML escaping.
func marshalValue(v any) (json.RawMessage, error) { return wire.Marshal(v) }

// readObject reads and parses the config file at path and checks its bytes
// with check. A missing file is an empty object and exists=false.
func readObject(path string, check func([]byte) error) (o *object, exists bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newObject(), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("oauth: read config: %w", err)
	}
	o, err = parseObject(data)
	if err == nil {
		err = check(data)
	}
	if err != nil {
		return nil, true, &ConfigError{Path: path, Err: err}
	}
	return o, true, nil
}

// resolveTarget follows symlinks from path to the file that holds the data,
// so a write replaces the target and leaves the link a link. A dangling link
// resolves to the path it points at.
func resolveTarget(path string) (string, error) {
	p := path
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", fmt.Errorf("oauth: %s: too many levels of symbolic links", path)
}

// writeFileAtomic replaces the file at path (through any symlinks) with data:
// a temp file in the same directory, mode 0600, written, fsynced, renamed over
// the target, then the directory fsynced. The temp file is removed on every
// failure path, so a crash leaves either the old bytes or the new ones.
// staleTempAge is how old a temp file of the config must be to be taken
// for one a dead writer left: far longer than any write takes.
const staleTempAge = time.Minute

func writeFileAtomic(path string, data []byte) (err error) {
	target, err := resolveTarget(path)
	if err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	// Callers hold the file lock, so a temp file of ours still here was
	// left by a process that died mid-write; but only an old one is taken
	// for that. A fresh one belongs to a writer at work: one that holds a
	// lock file deleted since (two holders at once), whose rename must not
	// fail.
	if stale, _ := filepath.Glob(filepath.Join(dir, "."+filepath.Base(target)+".tmp-*")); len(stale) > 0 {
		for _, p := range stale {
			if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > staleTempAge {
				os.Remove(p)
			}
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	if _, err = io.Copy(f, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	if err = os.Rename(tmp, target); err != nil {
		return fmt.Errorf("oauth: write config: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		serr := d.Sync()
		d.Close()
		if serr != nil {
			return fmt.Errorf("oauth: write config: sync directory: %w", serr)
		}
	}
	return nil
}
