package pgstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/memconnect/memconnect/oauth"
)

// Key is an AES-256 key for the secrets at rest, with the ID stored beside
// each sealed value so that a new key can be added and old rows re-sealed.
// Secret is secret: a Key is never logged (its String method says only its
// ID).
type Key struct {
	ID     string
	Secret [32]byte
}

// String names the key by its ID only.
func (k Key) String() string { return "pgstore.Key(" + k.ID + ")" }

// ErrNoKey is returned by [New] without a key: the store keeps no
// plaintext secret.
var ErrNoKey = errors.New("pgstore: an encryption key is required; there is no plaintext fallback")

// sealer seals with the first key and opens with any.
type sealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

func newSealer(keys []Key) (*sealer, error) {
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	s := &sealer{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("pgstore: a key needs an ID")
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("pgstore: two keys with the ID %q", k.ID)
		}
		block, err := aes.NewCipher(k.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("pgstore: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("pgstore: key %q: %w", k.ID, err)
		}
		s.aeads[k.ID] = aead
	}
	return s, nil
}

// seal encrypts plain with the current key, bound to where it is stored
// (aad: the table, the row and the column), so that a sealed value copied
// to another row or column does not open. The result is the key's ID, a
// zero byte, the nonce and the ciphertext. "" seals to nil.
func (s *sealer) seal(plain, aad string) []byte {
	if plain == "" {
		return nil
	}
	aead := s.aeads[s.current]
	out := make([]byte, 0, len(s.current)+1+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(append(out, s.current...), 0)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out = append(out, nonce...)
	return aead.Seal(out, nonce, []byte(plain), []byte(aad))
}

// sealedWithCurrent reports whether the current key sealed a value.
func (s *sealer) sealedWithCurrent(sealed []byte) bool {
	return len(sealed) > len(s.current) && string(sealed[:len(s.current)]) == s.current && sealed[len(s.current)] == 0
}

// open decrypts a sealed value. The error never holds the value.
func (s *sealer) open(sealed []byte, aad string) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	i := bytes.IndexByte(sealed, 0)
	if i < 0 {
		return "", errors.New("pgstore: a sealed value names no key")
	}
	keyID := string(sealed[:i])
	sealed = sealed[i+1:]
	aead, ok := s.aeads[keyID]
	if !ok {
		return "", fmt.Errorf("pgstore: a value is sealed with key %q, which this store was not given: %w", keyID, &oauth.StoreKeyError{KeyID: keyID})
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("pgstore: a sealed value is too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(aad))
	if err != nil {
		// A key with the right ID but other bytes is by far the likeliest
		// cause; a value changed or copied from another row fails alike.
		return "", fmt.Errorf("pgstore: this key does not open what key %s sealed: is it the right key?", keyID)
	}
	return string(plain), nil
}

// ParseKeys reads keys written as ParseKey reads them, separated by commas,
// the sealing key first: "k2:<secret>,k1:<secret>" seals with k2 and still
// opens what k1 sealed.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for part := range strings.SplitSeq(s, ",") {
		k, err := ParseKey(part)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ParseKey reads a key written as "<id>:<secret>", the secret 32 bytes in
// standard or URL-safe base64, such as the value of a -store-key flag. The
// error never repeats the secret.
func ParseKey(s string) (Key, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" {
		return Key{}, errors.New(`pgstore: a key is "<id>:<32 bytes in base64>", such as "k1:` + strings.Repeat("A", 43) + `="`)
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(secret); err == nil {
			break
		}
	}
	if err != nil || len(raw) != 32 {
		return Key{}, fmt.Errorf("pgstore: the secret of key %q is not 32 bytes in base64 (openssl rand -base64 32 makes one)", id)
	}
	k := Key{ID: id}
	copy(k.Secret[:], raw)
	return k, nil
}
