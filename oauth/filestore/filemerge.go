package filestore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// MergeConfig deep-merges patch into the file's root under the lock. It
// never writes a grant: the layout's AccessToken and Fields members are
// dropped at every level of patch, and inside the layout's Section only
// key's object may change. Other keys and unknown members survive.
func (s *Store) MergeConfig(ctx context.Context, key string, patch map[string]any) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.updateLocked(key, func(root *object) (bool, error) {
		return true, s.merge(root, key, patch)
	})
}

// merge is MergeConfig's edit of root, under the caller's lock.
func (s *Store) merge(root *object, key string, patch map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if k != s.layout.Section {
			if err := s.mergeKey(root, k, patch[k]); err != nil {
				return err
			}
			continue
		}
		sp, ok := patch[k].(map[string]any)
		if !ok {
			continue // a non-object section would wipe every key's object
		}
		bp, ok := sp[key].(map[string]any)
		if !ok {
			continue
		}
		section, block := s.block(root, key)
		if err := s.mergeInto(block, bp); err != nil {
			return err
		}
		section.setChild(key, block)
		root.setChild(s.layout.Section, section)
	}
	return nil
}

// mergeInto deep-merges patch into o, dropping grant members.
func (s *Store) mergeInto(o *object, patch map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if err := s.mergeKey(o, k, patch[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) mergeKey(o *object, k string, v any) error {
	if k == s.layout.AccessToken || k == s.layout.Fields || (k == s.layout.Verdict && k != "") {
		return nil
	}
	if sub, ok := v.(map[string]any); ok {
		c := o.child(k)
		if c == nil {
			c = newObject()
		}
		if err := s.mergeInto(c, sub); err != nil {
			return err
		}
		o.setChild(k, c)
		return nil
	}
	raw, err := marshalValue(v)
	if err != nil {
		return fmt.Errorf("oauth: merge config key %q: %w", k, err)
	}
	o.set(k, json.RawMessage(raw))
	return nil
}
