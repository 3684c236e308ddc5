package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pc "pluginconf.dev/goplugin-adapter/pb/pluginconfv1"
)

// The application's handshake: pluginconf's cookie and protocol version 1 (HS-1, HS-2).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGINCONF_MAGIC_COOKIE",
	MagicCookieValue: "pluginconf",
}

// The name under which the adapter dispenses the Hooks client.
const hooksPluginName = "hooks"

// The Hooks methods this host knows; Implemented names outside it are ignored (HK-6).
var knownHooks = map[string]bool{
	"OnConfigurationChange": true, "OnActivate": true, "OnDeactivate": true,
	"MessageHasBeenPosted": true, "MessageWillBePosted": true, "ExecuteCommand": true,
	"ServeHTTP": true,
}

// How often the adapter asks go-plugin whether the process has exited: go-plugin 1.0.1 runs
// cmd.Wait itself and offers only Client.Exited, no channel.
const exitPollInterval = 20 * time.Millisecond

// hooksPlugin is the go-plugin plugin type the host dispenses: a gRPC client of Hooks.
type hooksPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

type dispensed struct {
	hooks  pc.HooksClient
	health healthpb.HealthClient
	broker *plugin.GRPCBroker
}

func (hooksPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host side does not serve Hooks")
}

func (hooksPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return &dispensed{hooks: pc.NewHooksClient(conn), health: healthpb.NewHealthClient(conn), broker: broker}, nil
}

// process is one plugin process under go-plugin's client.
type process struct {
	client *plugin.Client
	config *plugin.ClientConfig // go-plugin fills in TLSConfig under AutoMTLS
	cmd    *exec.Cmd
	stderr *tail
	hooks  pc.HooksClient
	health healthpb.HealthClient
	broker *plugin.GRPCBroker

	// The HostAPI server announced to this process through the broker (HA-1), if any.
	hostAPI *grpc.Server

	// The process's Implemented answer, as the host uses it (known hooks only).
	implemented map[string]bool

	// Closed once go-plugin has seen the process exit.
	exited chan struct{}

	mu          sync.Mutex
	started     bool // go-plugin's Start has returned
	stopping    bool // the host is stopping it: an exit now is no crash (SV-15)
	activated   bool // OnActivate answered without error (LC-9)
	deactivated bool // OnDeactivate was sent: no more hooks (LC-2)
}

// failure is why a process did not start or stopped running.
type failure struct {
	kind     string // the SPEC's error kind
	reason   string
	status   int32 // exit status, or minus the signal
	exited   bool  // status is known
	tail     string
	terminal bool // `failed` at once, no restart (LC-4, LC-7)
}

func (f *failure) Error() string { return f.reason }

// launch starts the plugin through go-plugin's client and dispenses its Hooks client. A
// failure has killed the process (go-plugin kills it when Start fails) and reaped it.
// register sees the process before go-plugin starts it, so that a disable can end it.
func launch(id string, manifest manifestFields, s settings, logger hclog.Logger, register func(*process)) (*process, *failure) {
	cmd := exec.Command(manifest.command[0], manifest.command[1:]...)
	// go-plugin appends the host's own environment and then the handshake variables: Go
	// keeps the last of duplicate names, so the cookie and versions win (HS-6).
	cmd.Env = manifest.env
	p := &process{cmd: cmd, stderr: newTail(40), exited: make(chan struct{})}
	p.config = &plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{hooksPluginName: hooksPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     s.startTimeout,
		AutoMTLS:         s.autoMTLS,
		Stderr:           p.stderr,
		Logger:           logger,
	}
	p.client = plugin.NewClient(p.config)
	register(p)

	addr, err := startRecovering(p.client)
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	if err != nil {
		return nil, p.startFailed(classifyStart(err), "go-plugin refused the plugin: "+err.Error())
	}
	go p.watchExit()
	if addr == nil {
		// go-plugin 1.0.1 loses the error of an unknown network (a shadowed err) and returns
		// no address; dialling it would panic in grpc's dialer.
		return nil, p.startFailed("unknown_network", "the handshake's network is neither unix nor tcp")
	}
	rpc, err := p.client.Client()
	if err != nil {
		return nil, p.startFailed("unreachable", "go-plugin could not dial the plugin: "+err.Error())
	}
	raw, err := rpc.Dispense(hooksPluginName)
	if err != nil {
		return nil, p.startFailed("unreachable", "go-plugin could not dispense Hooks: "+err.Error())
	}
	d := raw.(*dispensed)
	p.hooks, p.health, p.broker = d.hooks, d.health, d.broker

	// HK-1: Implemented, once, before any other hook.
	ctx, cancel := p.callContext(s.hookTimeout)
	answer, err := p.hooks.Implemented(ctx, &pc.ImplementedRequest{})
	cancel()
	if err != nil {
		return nil, p.startFailed(classifyFirstCall(err), "Implemented failed: "+describeStatus(err))
	}
	p.implemented = map[string]bool{}
	for _, name := range answer.GetHooks() {
		if knownHooks[name] {
			p.implemented[name] = true
		} else {
			logger.Warn("ignoring an unknown hook in Implemented", "plugin", id, "hook", name)
		}
	}
	return p, nil
}

// startRecovering is Client.Start, with a panic inside it turned into an error: go-plugin
// 1.0.1 dereferences a nil TLS configuration when a plugin sends a certificate that the
// host did not ask for (no AutoMTLS). A host would crash; this one refuses the plugin.
func startRecovering(client *plugin.Client) (addr net.Addr, err error) {
	defer func() {
		if r := recover(); r != nil {
			addr, err = nil, fmt.Errorf("error parsing server cert: go-plugin panicked (%v): the plugin sent a certificate though AutoMTLS is off", r)
		}
	}()
	return client.Start()
}

// startFailed stops what go-plugin started and describes the failure with how it ended.
func (p *process) startFailed(kind, reason string) *failure {
	p.markStopping()
	p.kill()
	f := &failure{kind: kind, reason: reason}
	p.describeExit(f)
	if kind == "handshake_malformed" && f.exited && f.status >= 0 && strings.Contains(reason, "Unrecognized remote plugin message: \n") {
		// stdout closed because the process exited on its own before any handshake.
		f.kind = "exited_before_handshake"
	} else if kind == "handshake_malformed" && strings.Contains(reason, "Unrecognized remote plugin message: \n") {
		f.kind = "handshake_eof"
	}
	return f
}

// describeExit adds the exit status and the stderr tail, once the process is reaped.
func (p *process) describeExit(f *failure) {
	if state := p.cmd.ProcessState; state != nil {
		if ws, ok := state.Sys().(syscall.WaitStatus); ok {
			f.exited = true
			if ws.Signaled() {
				f.status = -int32(ws.Signal())
			} else {
				f.status = int32(ws.ExitStatus())
			}
		}
	}
	f.tail = p.stderr.String()
}

// watchExit closes p.exited once go-plugin has reaped the process.
func (p *process) watchExit() {
	ticker := time.NewTicker(exitPollInterval)
	defer ticker.Stop()
	for range ticker.C {
		if p.client.Exited() {
			close(p.exited)
			return
		}
	}
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) pid() int32 {
	if p == nil || p.cmd.Process == nil {
		return 0
	}
	return int32(p.cmd.Process.Pid)
}

func (p *process) markStopping() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
}

func (p *process) isStarted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// killPid SIGKILLs the plugin's pid at once (go-plugin offers no more than the pid): for a
// process still in go-plugin's Start, which holds the client's lock until the handshake
// ends, so that Kill would wait for it, and for one that failed its health check.
func (p *process) killPid() {
	p.markStopping()
	if proc := p.cmd.Process; proc != nil {
		_ = proc.Kill()
	}
}

func (p *process) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// implementedList is the Implemented answer as the host uses it, sorted.
func (p *process) implementedList() []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.implemented))
	for name := range p.implemented {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// callContext bounds a call by the deadline and ends it once the process exits, so that
// calls in progress fail at once instead of waiting for their deadlines (SV-5).
func (p *process) callContext(deadline time.Duration) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if deadline > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), deadline)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stop runs go-plugin's own stop sequence: OnDeactivate when LC-9 allows it, then Kill,
// which calls GRPCController.Shutdown (no deadline), waits 2 s for the exit and then
// SIGKILLs the plugin's pid only. It is not papered over: no SIGTERM, no group kill.
func (p *process) stop(logger hclog.Logger) {
	p.mu.Lock()
	p.stopping = true
	deactivate := p.activated && !p.deactivated && p.implemented["OnDeactivate"]
	p.deactivated = true
	p.mu.Unlock()
	if deactivate && !p.hasExited() {
		ctx, cancel := p.callContext(onDeactivateDeadline)
		answer, err := p.hooks.OnDeactivate(ctx, &pc.OnDeactivateRequest{})
		cancel()
		switch {
		case err != nil:
			logger.Warn("OnDeactivate failed; stopping anyway", "error", describeStatus(err))
		case answer.GetError() != nil:
			logger.Warn("OnDeactivate answered an application error; stopping anyway",
				"code", answer.GetError().GetCode(), "message", answer.GetError().GetMessage())
		}
	}
	p.kill()
}

// kill is go-plugin's Kill, then the release of the brokered servers the host announced to
// the process (SV-18, SV-23), which outlive Kill otherwise.
func (p *process) kill() {
	p.client.Kill()
	p.mu.Lock()
	server := p.hostAPI
	p.hostAPI = nil
	p.mu.Unlock()
	if server != nil {
		server.Stop()
	}
}

// startErrorKinds maps go-plugin 1.0.1's start errors, which are text only, to the SPEC's
// error kinds (HS-25), by a fragment of each message; any other refusal is a malformed line.
var startErrorKinds = []struct{ fragment, kind string }{
	{"timeout while waiting for plugin to start", "start_timeout"},
	{"plugin exited before we could connect", "exited_before_handshake"},
	{"Incompatible core API version", "core_version_mismatch"},
	{"Incompatible API version", "app_version_mismatch"},
	{"Unsupported plugin protocol", "unsupported_protocol"},
	{"error parsing server cert", "tls_error"},
}

func classifyStart(err error) string {
	for _, k := range startErrorKinds {
		if strings.Contains(err.Error(), k.fragment) {
			return k.kind
		}
	}
	return "handshake_malformed"
}

// classifyFirstCall: go-plugin never checks that the address answers, so a plugin that
// cannot be reached, or whose TLS fails, shows at the first call.
func classifyFirstCall(err error) string {
	text := strings.ToLower(err.Error())
	switch {
	case strings.Contains(text, "tls") || strings.Contains(text, "x509") || strings.Contains(text, "certificate") || strings.Contains(text, "authentication handshake"):
		return "tls_error"
	case status.Code(err) == codes.Unavailable:
		return "unreachable"
	}
	return "implemented_failed"
}

func describeStatus(err error) string {
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

// tail keeps the last lines a plugin wrote to stderr (HS-26).
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
	part  strings.Builder
}

func newTail(max int) *tail { return &tail{max: max} }

// Write takes what go-plugin passes on: each stderr line, then its newline separately.
func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range string(b) {
		if c == '\n' {
			t.lines = append(t.lines, t.part.String())
			t.part.Reset()
			if len(t.lines) > t.max {
				t.lines = t.lines[len(t.lines)-t.max:]
			}
			continue
		}
		if t.part.Len() < 4096 {
			t.part.WriteRune(c)
		}
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if t.part.Len() > 0 {
		lines = append(lines, t.part.String())
	}
	return strings.Join(lines, "\n")
}
