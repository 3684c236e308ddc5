package main

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	ctl "pluginconf.dev/goplugin-adapter/pb/controlv1"
	pc "pluginconf.dev/goplugin-adapter/pb/pluginconfv1"
)

// The states of SV-1, and HostControl's own "loaded" for a plugin never enabled.
const (
	stateLoaded     = "loaded"
	stateStarting   = "starting"
	stateActive     = "active"
	stateCrashed    = "crashed"
	stateRestarting = "restarting"
	stateFailed     = "failed"
	stateStopped    = "stopped"
)

// managed is one loaded plugin and its supervision: the thin loop a host on go-plugin
// writes itself, since go-plugin supervises nothing.
//
//	enable:   (loaded|stopped|failed) -> starting
//	run:      starting -> active | crashed | failed (AppError in activation, LC-4/LC-7)
//	          active -> crashed (unexpected exit, SV-3/SV-6; failed health check, SV-7)
//	          crashed -> restarting -> starting (backoff, SV-8) | failed (restart limit, SV-9)
//	disable:  any running state -> stopped, by go-plugin's Kill
//
// Each enable starts one run loop; disable closes its stopping channel and waits for it to
// end, the loop itself stopping the process it owns.
type managed struct {
	id       string
	manifest manifestFields
	settings settings
	log      hclog.Logger

	mu          sync.Mutex
	changed     *sync.Cond
	state       string
	lastError   string
	history     []*ctl.PluginStatus // the status as of each transition, for WatchPlugin
	transitions []*ctl.Transition
	proc        *process
	unloaded    bool
	stopping    chan struct{} // closed by disable
	done        chan struct{} // closed when the run loop has ended
	failures    []time.Time   // failures since the last enable (SV-9's window)
	streak      int           // failures in a row (SV-8's n)
	config      map[string]string
	implemented map[string]bool // the last process's Implemented answer; nil before one

	configMu sync.Mutex // one OnConfigurationChange at a time, in order (LC-3)
	kv       *kvStore   // HostAPI's key-value data: the plugin id's, across restarts (HA-6)
	stopMu   sync.Mutex // one stop sequence at a time
}

func newManaged(id string, m manifestFields, s settings, logger hclog.Logger) *managed {
	p := &managed{
		id: id, manifest: m, settings: s, log: logger.Named(id),
		state: stateLoaded, config: m.configuration, kv: newKVStore(),
	}
	p.changed = sync.NewCond(&p.mu)
	return p
}

// statusLocked is the plugin's status now.
func (m *managed) statusLocked() *ctl.PluginStatus {
	return &ctl.PluginStatus{
		PluginId:    m.id,
		State:       m.state,
		LastError:   m.lastError,
		Pid:         m.proc.pid(),
		Transitions: append([]*ctl.Transition(nil), m.transitions...),
		Implemented: m.proc.implementedList(),
	}
}

func (m *managed) status() *ctl.PluginStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked()
}

// moveLocked records a state change (SV-2) and wakes the watchers.
func (m *managed) moveLocked(to, reason string, f *failure) {
	t := &ctl.Transition{
		OldState: m.state,
		NewState: to,
		WallTime: float64(time.Now().UnixNano()) / 1e9,
		Reason:   reason,
	}
	if m.state == stateLoaded {
		t.OldState = ""
	}
	if f != nil {
		t.ErrorKind = f.kind
		t.HasExitStatus = f.exited
		t.ExitStatus = f.status
		t.StderrTail = f.tail
	}
	if to == stateCrashed || to == stateFailed {
		m.lastError = reason
	}
	m.state = to
	m.transitions = append(m.transitions, t)
	m.history = append(m.history, m.statusLocked())
	m.log.Info("state", "from", t.OldState, "to", to, "reason", reason)
	m.changed.Broadcast()
}

// enable starts supervising: to `starting` at once, the start itself in the background.
func (m *managed) enable() {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case stateStarting, stateActive, stateCrashed, stateRestarting:
		return
	case stateFailed:
		m.failures, m.streak = nil, 0 // SV-9: enabling again clears the history
	}
	m.stopping = make(chan struct{})
	m.done = make(chan struct{})
	m.moveLocked(stateStarting, "enabled", nil)
	go m.run(m.stopping, m.done)
}

// run is one enable's supervision loop; it ends when the plugin fails for good or when
// stopping is closed, having stopped any process it started.
func (m *managed) run(stopping, done chan struct{}) {
	defer close(done)
	for {
		proc, f := m.start(stopping)
		if proc == nil && f == nil {
			return // disabled while starting
		}
		if f == nil {
			f = m.supervise(stopping, proc)
			if f == nil {
				return // disabled
			}
		}
		m.mu.Lock()
		if f.terminal {
			m.moveLocked(stateFailed, f.reason, f)
			m.mu.Unlock()
			return
		}
		m.moveLocked(stateCrashed, f.reason, f)
		now := time.Now()
		m.failures = append(m.failures, now)
		m.streak++
		if m.recentFailuresLocked(now) >= m.settings.restartLimit {
			limit := *f
			limit.kind = "restart_limit"
			m.moveLocked(stateFailed, fmt.Sprintf("restart_limit: %d failures within %s; the last: %s",
				m.settings.restartLimit, m.settings.restartWindow, f.reason), &limit)
			m.mu.Unlock()
			return
		}
		delay := m.backoffLocked()
		m.moveLocked(stateRestarting, fmt.Sprintf("restart %d in %s", m.streak, delay.Round(time.Millisecond)), nil)
		m.mu.Unlock()

		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-stopping:
			timer.Stop()
			return
		}
		m.mu.Lock()
		m.moveLocked(stateStarting, "backoff elapsed; starting a new process", nil)
		m.mu.Unlock()
	}
}

func stopRequested(stopping chan struct{}) bool {
	select {
	case <-stopping:
		return true
	default:
		return false
	}
}

func (m *managed) recentFailuresLocked(now time.Time) int {
	n := 0
	for _, at := range m.failures {
		if now.Sub(at) <= m.settings.restartWindow {
			n++
		}
	}
	return n
}

// backoffLocked is SV-8's delay: uniform in [0, min(max, base * 2^(n-1))].
func (m *managed) backoffLocked() time.Duration {
	ceiling := m.settings.backoffBase
	for i := 1; i < m.streak && ceiling < m.settings.backoffMax; i++ {
		ceiling *= 2
	}
	if ceiling > m.settings.backoffMax {
		ceiling = m.settings.backoffMax
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int63n(int64(ceiling) + 1))
}

// start launches a process and activates it (LC-1): the active process, why it failed, or
// neither when the plugin was disabled meanwhile (the process then stopped).
func (m *managed) start(stopping chan struct{}) (*process, *failure) {
	proc, f := launch(m.id, m.manifest, m.settings, m.log, func(p *process) {
		m.mu.Lock()
		m.proc = p
		m.mu.Unlock()
	})
	if f != nil {
		m.mu.Lock()
		m.proc = nil
		m.mu.Unlock()
		if stopRequested(stopping) {
			return nil, nil
		}
		return nil, f
	}
	m.mu.Lock()
	m.implemented = proc.implemented
	m.mu.Unlock()
	if stopRequested(stopping) {
		proc.stop(m.log)
		m.dropProcess(proc)
		return nil, nil
	}

	// Configuration first, then OnActivate, each when listed (LC-1).
	m.configMu.Lock()
	var appErr *pc.AppError
	var err error
	if proc.implemented["OnConfigurationChange"] {
		ctx, cancel := proc.callContext(m.settings.hookTimeout)
		var answer *pc.OnConfigurationChangeResponse
		answer, err = proc.hooks.OnConfigurationChange(ctx, &pc.OnConfigurationChangeRequest{Configuration: m.configuration()})
		cancel()
		if err == nil {
			appErr = answer.GetError()
		}
	}
	m.configMu.Unlock()
	if f := m.activationFailure(proc, "OnConfigurationChange", appErr, err); f != nil {
		return m.unlessStopping(stopping, f)
	}
	if proc.implemented["OnActivate"] && !stopRequested(stopping) {
		brokerID := m.serveHostAPI(proc)
		ctx, cancel := proc.callContext(m.settings.hookTimeout)
		answer, err := proc.hooks.OnActivate(ctx, &pc.OnActivateRequest{PluginId: m.id, HostApiBrokerId: brokerID})
		cancel()
		var appErr *pc.AppError
		if err == nil {
			appErr = answer.GetError()
		}
		if f := m.activationFailure(proc, "OnActivate", appErr, err); f != nil {
			return m.unlessStopping(stopping, f)
		}
	}
	if stopRequested(stopping) {
		// Disabled during activation: no OnDeactivate for a process never activated (LC-9).
		proc.stop(m.log)
		m.dropProcess(proc)
		return nil, nil
	}
	proc.mu.Lock()
	proc.activated = true
	proc.mu.Unlock()
	if proc.hasExited() {
		f := &failure{kind: "unexpected_exit", reason: "the plugin exited during its activation"}
		proc.kill()
		proc.describeExit(f)
		m.dropProcess(proc)
		return nil, f
	}
	m.mu.Lock()
	m.moveLocked(stateActive, "activated", nil)
	m.mu.Unlock()
	return proc, nil
}

func (m *managed) unlessStopping(stopping chan struct{}, f *failure) (*process, *failure) {
	if stopRequested(stopping) {
		return nil, nil
	}
	return nil, f
}

// activationFailure stops a process whose activation failed and says why: an AppError
// fails the plugin (LC-4, LC-7: no OnDeactivate, no restart); a transport failure or an
// expired deadline is a failed start (LC-8).
func (m *managed) activationFailure(proc *process, hook string, appErr *pc.AppError, err error) *failure {
	if appErr == nil && err == nil {
		return nil
	}
	proc.stop(m.log) // not activated: no OnDeactivate
	m.dropProcess(proc)
	f := &failure{}
	if appErr != nil {
		f.kind, f.terminal = "activation_failed", true
		if hook == "OnConfigurationChange" {
			f.kind = "configuration_rejected"
		}
		f.reason = fmt.Sprintf("%s answered an application error %s: %s", hook, appErr.GetCode(), appErr.GetMessage())
	} else {
		f.kind = hookErrorKind(err)
		f.reason = fmt.Sprintf("%s failed: %s", hook, describeStatus(err))
	}
	proc.describeExit(f)
	return f
}

func (m *managed) dropProcess(proc *process) {
	m.mu.Lock()
	if m.proc == proc {
		m.proc = nil
	}
	m.mu.Unlock()
}

// supervise watches an active process until it exits, fails a health check (SV-7), or is
// stopped; nil when it was stopped.
func (m *managed) supervise(stopping chan struct{}, proc *process) *failure {
	start := time.Now()
	ticker := time.NewTicker(m.settings.healthInterval)
	defer ticker.Stop()
	for {
		select {
		case <-stopping:
			proc.stop(m.log)
			m.dropProcess(proc)
			return nil
		case <-proc.exited:
			if stopRequested(stopping) {
				continue
			}
			// SV-6: every exit the host did not ask for is a crash, status 0 included. The
			// process is gone: kill only ends go-plugin's goroutines.
			f := m.lost(proc, &failure{kind: "unexpected_exit"}, start)
			f.reason = fmt.Sprintf("the plugin process exited unexpectedly (%s)", describeExitStatus(f))
			return f
		case <-ticker.C:
			problem := m.healthProblem(proc)
			if problem == "" || stopRequested(stopping) || proc.hasExited() {
				continue
			}
			// SV-7: the host kills the process (go-plugin offers no more than its pid).
			proc.killPid()
			return m.lost(proc, &failure{kind: "health_check_failed", reason: "health check failed: " + problem}, start)
		}
	}
}

// lost ends what is left of a process the host did not stop (go-plugin's goroutines, the
// brokered servers), adds how it ended to f, and lets it go.
func (m *managed) lost(proc *process, f *failure, activeSince time.Time) *failure {
	proc.markStopping()
	proc.kill()
	proc.describeExit(f)
	m.forgetStreakIfStable(activeSince)
	m.dropProcess(proc)
	return f
}

func describeExitStatus(f *failure) string {
	switch {
	case !f.exited:
		return "status unknown"
	case f.status < 0:
		return fmt.Sprintf("killed by signal %d", -f.status)
	default:
		return fmt.Sprintf("exit status %d", f.status)
	}
}

// forgetStreakIfStable resets SV-8's count once the plugin had stayed active long enough.
func (m *managed) forgetStreakIfStable(activeSince time.Time) {
	if time.Since(activeSince) >= stableAfter {
		m.mu.Lock()
		m.streak = 0
		m.mu.Unlock()
	}
}

func (m *managed) healthProblem(proc *process) string {
	ctx, cancel := proc.callContext(m.settings.healthTimeout)
	defer cancel()
	answer, err := proc.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
	if err != nil {
		return describeStatus(err)
	}
	if answer.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "the plugin answered " + answer.GetStatus().String()
	}
	return ""
}

// disable stops the plugin by go-plugin's stop sequence and answers once it is stopped.
func (m *managed) disable() {
	m.stopMu.Lock()
	defer m.stopMu.Unlock()
	m.mu.Lock()
	if m.state == stateLoaded || m.state == stateStopped {
		m.mu.Unlock()
		return
	}
	stopping, done, proc := m.stopping, m.done, m.proc
	close(stopping)
	m.mu.Unlock()
	if proc != nil && !proc.isStarted() {
		// Still in go-plugin's Start, which holds the client's lock until the handshake
		// ends: end the process so that the start fails at once.
		proc.killPid()
	}
	<-done
	m.mu.Lock()
	m.moveLocked(stateStopped, "disabled", nil)
	m.mu.Unlock()
}

// activeProcess is the process hooks may be sent to (LC-2), or nil.
func (m *managed) activeProcess() *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateActive || m.proc == nil {
		return nil
	}
	m.proc.mu.Lock()
	defer m.proc.mu.Unlock()
	if m.proc.deactivated || m.proc.stopping {
		return nil
	}
	return m.proc
}

func (m *managed) configuration() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.config))
	for k, v := range m.config {
		out[k] = v
	}
	return out
}

// watch sends the status now, then the status as of each later transition, none skipped,
// until ctx ends or the plugin is unloaded.
func (m *managed) watch(ctx context.Context, send func(*ctl.PluginStatus) error) error {
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			m.changed.Broadcast()
			m.mu.Unlock()
		case <-finished:
		}
	}()
	m.mu.Lock()
	next := len(m.history)
	first := m.statusLocked()
	m.mu.Unlock()
	if err := send(first); err != nil {
		return err
	}
	for {
		m.mu.Lock()
		for next >= len(m.history) && ctx.Err() == nil && !m.unloaded {
			m.changed.Wait()
		}
		if ctx.Err() != nil || next >= len(m.history) {
			m.mu.Unlock()
			return nil
		}
		pending := m.history[next:]
		next = len(m.history)
		m.mu.Unlock()
		for _, s := range pending {
			if err := send(s); err != nil {
				return err
			}
		}
	}
}

// markUnloaded ends the plugin's watches once they have sent every status.
func (m *managed) markUnloaded() {
	m.mu.Lock()
	m.unloaded = true
	m.changed.Broadcast()
	m.mu.Unlock()
}

// listsServeHTTP: whether the last Implemented answer lists ServeHTTP, and whether there
// was one (SE-2).
func (m *managed) listsServeHTTP() (lists, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.implemented["ServeHTTP"], m.implemented != nil
}
