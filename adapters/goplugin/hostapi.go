package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pc "pluginconf.dev/goplugin-adapter/pb/pluginconfv1"
)

// HA-9: keys and values the host accepts.
const (
	maxKeyBytes   = 256
	maxValueBytes = 1 << 20
)

// serveHostAPI announces a HostAPI server of the process's own through go-plugin's broker
// (HA-1) and answers its broker id for OnActivate; 0 when it cannot (LC-6).
func (m *managed) serveHostAPI(proc *process) uint32 {
	if proc.broker == nil {
		return 0
	}
	id := proc.broker.NextId()
	// Accept sends the ConnInfo on the broker stream before it returns, so the announcement
	// precedes OnActivate (go-plugin's AcceptAndServe would send it from its goroutine).
	listener, err := proc.broker.Accept(id)
	if err != nil {
		m.log.Warn("cannot announce HostAPI through the broker; activating without it", "error", err)
		return 0
	}
	var options []grpc.ServerOption
	if proc.config.TLSConfig != nil {
		options = append(options, grpc.Creds(credentials.NewTLS(proc.config.TLSConfig)))
	}
	server := grpc.NewServer(options...)
	pc.RegisterHostAPIServer(server, &hostAPI{plugin: m, log: m.log.Named("hostapi")})
	proc.mu.Lock()
	proc.hostAPI = server
	proc.mu.Unlock()
	go func() { _ = server.Serve(listener) }()
	return id
}

// hostAPI serves one plugin: the server it arrives on says which (HA-5).
type hostAPI struct {
	plugin *managed
	log    hclog.Logger
}

func invalidKey(key string) *pc.AppError {
	switch {
	case key == "":
		return &pc.AppError{Code: "invalid_argument", Message: "the key is empty; give a key of 1 to 256 bytes"}
	case len(key) > maxKeyBytes:
		return &pc.AppError{Code: "invalid_argument", Message: fmt.Sprintf("the key is %d bytes; keys are at most %d", len(key), maxKeyBytes)}
	}
	return nil
}

func invalidValue(value []byte) *pc.AppError {
	if len(value) > maxValueBytes {
		return &pc.AppError{Code: "invalid_argument", Message: fmt.Sprintf("the value is %d bytes; values are at most %d", len(value), maxValueBytes)}
	}
	return nil
}

func (h *hostAPI) KVGet(_ context.Context, r *pc.KVGetRequest) (*pc.KVGetResponse, error) {
	if e := invalidKey(r.GetKey()); e != nil {
		return &pc.KVGetResponse{Error: e}, nil
	}
	value, found := h.plugin.kv.get(r.GetKey())
	return &pc.KVGetResponse{Found: found, Value: value}, nil
}

func (h *hostAPI) KVSet(_ context.Context, r *pc.KVSetRequest) (*pc.KVSetResponse, error) {
	if e := invalidKey(r.GetKey()); e != nil {
		return &pc.KVSetResponse{Error: e}, nil
	}
	if e := invalidValue(r.GetValue()); e != nil {
		return &pc.KVSetResponse{Error: e}, nil
	}
	h.plugin.kv.set(r.GetKey(), r.GetValue())
	return &pc.KVSetResponse{}, nil
}

func (h *hostAPI) KVDelete(_ context.Context, r *pc.KVDeleteRequest) (*pc.KVDeleteResponse, error) {
	if e := invalidKey(r.GetKey()); e != nil {
		return &pc.KVDeleteResponse{Error: e}, nil
	}
	return &pc.KVDeleteResponse{Deleted: h.plugin.kv.delete(r.GetKey())}, nil
}

func (h *hostAPI) KVCompareAndSet(_ context.Context, r *pc.KVCompareAndSetRequest) (*pc.KVCompareAndSetResponse, error) {
	if e := invalidKey(r.GetKey()); e != nil {
		return &pc.KVCompareAndSetResponse{Error: e}, nil
	}
	if e := invalidValue(r.GetNewValue()); e != nil {
		return &pc.KVCompareAndSetResponse{Error: e}, nil
	}
	// old_value is proto3 optional: absent means "only if the key is absent" (HA-8).
	var old []byte
	expectPresent := false
	if v, ok := r.GetXOldValue().(*pc.KVCompareAndSetRequest_OldValue); ok {
		old, expectPresent = v.OldValue, true
	}
	return &pc.KVCompareAndSetResponse{Swapped: h.plugin.kv.compareAndSet(r.GetKey(), expectPresent, old, r.GetNewValue())}, nil
}

func (h *hostAPI) Log(_ context.Context, r *pc.LogRequest) (*pc.LogResponse, error) {
	args := []interface{}{"plugin", h.plugin.id}
	for k, v := range r.GetFields() {
		args = append(args, k, v)
	}
	switch r.GetLevel() {
	case pc.LogLevel_LOG_LEVEL_DEBUG:
		h.log.Debug(r.GetMessage(), args...)
	case pc.LogLevel_LOG_LEVEL_WARN:
		h.log.Warn(r.GetMessage(), args...)
	case pc.LogLevel_LOG_LEVEL_ERROR:
		h.log.Error(r.GetMessage(), args...)
	default: // INFO, and UNSPECIFIED as INFO (HA-10)
		h.log.Info(r.GetMessage(), args...)
	}
	return &pc.LogResponse{}, nil
}

func (h *hostAPI) GetConfiguration(context.Context, *pc.GetConfigurationRequest) (*pc.GetConfigurationResponse, error) {
	return &pc.GetConfigurationResponse{Configuration: h.plugin.configuration()}, nil
}

// kvStore is one plugin's key-value data; every operation is atomic (HA-8).
type kvStore struct {
	mu     sync.Mutex
	values map[string][]byte
}

func newKVStore() *kvStore { return &kvStore{values: map[string][]byte{}} }

func (s *kvStore) get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	value, found := s.values[key]
	return value, found
}

func (s *kvStore) set(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = append([]byte{}, value...)
}

func (s *kvStore) delete(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := s.values[key]
	delete(s.values, key)
	return found
}

func (s *kvStore) compareAndSet(key string, expectPresent bool, old, value []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	current, found := s.values[key]
	if found != expectPresent || (found && !bytes.Equal(current, old)) {
		return false
	}
	s.values[key] = append([]byte{}, value...)
	return true
}
