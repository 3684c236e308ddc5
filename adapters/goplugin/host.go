package main

import (
	"sync"

	hclog "github.com/hashicorp/go-hclog"
)

// host holds the loaded plugins. Load order is the filter chain's configured order (FL-8).
type host struct {
	log hclog.Logger

	mu      sync.Mutex
	plugins map[string]*managed
	order   []string
}

func newHost(logger hclog.Logger) *host {
	return &host{log: logger, plugins: map[string]*managed{}}
}

// add registers a plugin; false when the id is taken.
func (h *host) add(m *managed) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, taken := h.plugins[m.id]; taken {
		return false
	}
	h.plugins[m.id] = m
	h.order = append(h.order, m.id)
	return true
}

func (h *host) get(id string) *managed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.plugins[id]
}

// remove forgets a plugin (already stopped); its id may be loaded again.
func (h *host) remove(m *managed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.plugins[m.id] != m {
		return
	}
	delete(h.plugins, m.id)
	for i, id := range h.order {
		if id == m.id {
			h.order = append(h.order[:i:i], h.order[i+1:]...)
			break
		}
	}
}

// all is every loaded plugin, in load order.
func (h *host) all() []*managed {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*managed, 0, len(h.order))
	for _, id := range h.order {
		out = append(out, h.plugins[id])
	}
	return out
}

// stopAll stops every plugin by the stop sequence, all concurrently (SV-19).
func (h *host) stopAll() {
	var wg sync.WaitGroup
	for _, m := range h.all() {
		wg.Add(1)
		go func(m *managed) {
			defer wg.Done()
			m.disable()
		}(m)
	}
	wg.Wait()
}
