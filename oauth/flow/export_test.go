package flow

import "time"

// SetStoreTimeout changes how long m waits for each call to its Store.
func SetStoreTimeout(m *Manager, d time.Duration) {
	if b, ok := m.store.(boundedStore); ok {
		m.store = boundedStore{b.s, d}
	}
}
