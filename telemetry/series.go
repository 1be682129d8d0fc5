package telemetry

import (
	"sync"
	"sync/atomic"
)

// Series keeps what was found by a key (the series of a metric vector by its label values)
// for paths where finding it again costs more than counting: a lookup takes no lock and
// makes nothing, where a sync.Map would box the key on every call. A new key copies the
// map, so the keys must be bounded (declared resources, statuses, outcomes). The zero
// value is ready to use.
type Series[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// Get returns the value kept for k, made with mk the first time.
func (s *Series[K, V]) Get(k K, mk func() V) V {
	if m := s.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1)
	if old != nil {
		next = make(map[K]V, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	}
	v := mk()
	next[k] = v
	s.m.Store(&next)
	return v
}
