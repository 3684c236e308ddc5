package main

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	ctl "pluginconf.dev/goplugin-adapter/pb/controlv1"
)

// Defaults of SPEC Appendix A, where the policy leaves a field at 0.
const (
	defaultStartTimeout   = time.Minute // go-plugin's own default
	defaultHookTimeout    = 30 * time.Second
	defaultHealthInterval = 5 * time.Second
	defaultHealthTimeout  = 3 * time.Second
	defaultBackoffBase    = 200 * time.Millisecond
	defaultBackoffMax     = 30 * time.Second
	defaultRestartLimit   = 3
	defaultRestartWindow  = time.Hour
	// A run of failures is forgotten once the plugin stays active this long (SV-8).
	stableAfter          = time.Minute
	onDeactivateDeadline = 10 * time.Second // LC-9
)

// settings is a plugin's HostPolicy with the defaults filled in.
type settings struct {
	startTimeout   time.Duration
	hookTimeout    time.Duration
	healthInterval time.Duration
	healthTimeout  time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	restartLimit   int
	restartWindow  time.Duration
	autoMTLS       bool
	maxBody        int64 // 0: no limit
}

func millis(ms uint32, fallback time.Duration) time.Duration {
	if ms == 0 {
		return fallback
	}
	return time.Duration(ms) * time.Millisecond
}

// settingsFrom applies a HostPolicy, or says which field this host cannot take.
func settingsFrom(p *ctl.HostPolicy) (settings, error) {
	// go-plugin's Kill waits a fixed 2 s for the exit after a Shutdown without deadline, and
	// this host has no circuit breaker (HostCapabilities says so).
	var refused []string
	if p.GetStopGraceMs() != 0 {
		refused = append(refused, "stop_grace_ms (go-plugin's Client.Kill waits a fixed 2 s after a Shutdown that has no deadline)")
	}
	if p.GetBreakerThreshold() != 0 || p.GetBreakerCooldownMs() != 0 {
		refused = append(refused, "breaker_threshold/breaker_cooldown_ms (this host has no circuit breaker)")
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return settings{}, fmt.Errorf("the go-plugin host cannot set %v", refused)
	}
	return settings{
		startTimeout:   millis(p.GetStartTimeoutMs(), defaultStartTimeout),
		hookTimeout:    millis(p.GetHookTimeoutMs(), defaultHookTimeout),
		healthInterval: millis(p.GetHealthIntervalMs(), defaultHealthInterval),
		healthTimeout:  millis(p.GetHealthTimeoutMs(), defaultHealthTimeout),
		backoffBase:    millis(p.GetBackoffBaseMs(), defaultBackoffBase),
		backoffMax:     millis(p.GetBackoffMaxMs(), defaultBackoffMax),
		restartLimit:   restartLimit(p.GetRestartLimit()),
		restartWindow:  millis(p.GetRestartWindowMs(), defaultRestartWindow),
		autoMTLS:       p.GetAutoMtls(),
		maxBody:        int64(p.GetMaxRequestBodyBytes()),
	}, nil
}

func restartLimit(n uint32) int {
	if n == 0 {
		return defaultRestartLimit
	}
	return int(n)
}

// manifestFields is what the host keeps of a PluginManifest.
type manifestFields struct {
	command       []string
	env           []string
	configuration map[string]string
}

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func manifestFrom(m *ctl.PluginManifest) (manifestFields, error) {
	if !validID.MatchString(m.GetId()) {
		return manifestFields{}, fmt.Errorf("plugin id %q is not valid: use letters, digits, '.', '_' or '-' (it is also the plugin's HTTP mount, /plugins/ID/)", m.GetId())
	}
	if len(m.GetCommand()) == 0 || m.GetCommand()[0] == "" {
		return manifestFields{}, fmt.Errorf("plugin %q: manifest.command is empty; give the program and its arguments", m.GetId())
	}
	env := make([]string, 0, len(m.GetEnv()))
	for k, v := range m.GetEnv() {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	configuration := map[string]string{}
	for k, v := range m.GetConfiguration() {
		configuration[k] = v
	}
	return manifestFields{
		command:       append([]string(nil), m.GetCommand()...),
		env:           env,
		configuration: configuration,
	}, nil
}
