package main

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ctl "pluginconf.dev/goplugin-adapter/pb/controlv1"
	pc "pluginconf.dev/goplugin-adapter/pb/pluginconfv1"
)

// hookError is why a hook gave no usable answer, as HostControl reports it (RR-2, RR-3).
type hookError struct {
	kind    string
	message string
	code    string // app_error only
}

func (e *hookError) proto() *ctl.HostError {
	return &ctl.HostError{Kind: e.kind, Message: e.message, Code: e.code}
}

// hookErrorKind maps a failed call's status to RR-3's kinds.
func hookErrorKind(err error) string {
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return "timeout"
	case codes.Unimplemented:
		return "not_implemented"
	case codes.Unavailable, codes.Canceled:
		return "plugin_unavailable"
	}
	return "plugin_error"
}

// call sends one hook to the plugin's active process: never one the process does not list
// (HK-5), never before activation or after OnDeactivate (LC-2), with the hook deadline
// (HK-11), failing at once when the process exits (SV-5).
func (m *managed) call(hook string, send func(ctx context.Context, p *process) error) *hookError {
	proc := m.activeProcess()
	if proc == nil {
		return &hookError{kind: "plugin_unavailable", message: fmt.Sprintf("plugin %q is %s", m.id, m.status().GetState())}
	}
	if !proc.implemented[hook] {
		return &hookError{kind: "not_implemented", message: fmt.Sprintf("plugin %q does not list %s in Implemented", m.id, hook)}
	}
	ctx, cancel := proc.callContext(m.settings.hookTimeout)
	defer cancel()
	err := send(ctx, proc)
	if err == nil {
		return nil
	}
	kind := hookErrorKind(err)
	if proc.hasExited() {
		kind = "plugin_unavailable"
	}
	return &hookError{kind: kind, message: fmt.Sprintf("plugin %q, hook %s: %s", m.id, hook, describeStatus(err))}
}

// activeWith is every active plugin that lists the hook, in load order.
func (h *host) activeWith(hook string) []*managed {
	var out []*managed
	for _, m := range h.all() {
		if p := m.activeProcess(); p != nil && p.implemented[hook] {
			out = append(out, m)
		}
	}
	return out
}

// filter runs the post through every active plugin's MessageWillBePosted, in order (FL-1);
// a plugin that fails is passed over (FL-5, FL-6).
func (h *host) filter(post *pc.Post) *ctl.FilterOutcome {
	outcome := &ctl.FilterOutcome{Post: post}
	for _, m := range h.activeWith("MessageWillBePosted") {
		var answer *pc.MessageWillBePostedResponse
		failed := m.call("MessageWillBePosted", func(ctx context.Context, p *process) error {
			var err error
			answer, err = p.hooks.MessageWillBePosted(ctx, &pc.MessageWillBePostedRequest{Post: outcome.Post})
			return err
		})
		step := &ctl.FilterStep{PluginId: m.id}
		switch {
		case failed != nil:
			step.Outcome, step.Error = "error", failed.proto()
		case answer.GetError() != nil:
			step.Outcome = "error"
			step.Error = &ctl.HostError{Kind: "app_error", Code: answer.GetError().GetCode(), Message: answer.GetError().GetMessage()}
		case answer.GetAction() == pc.FilterAction_FILTER_ACTION_KEEP:
			step.Outcome = "keep"
		case answer.GetAction() == pc.FilterAction_FILTER_ACTION_MODIFY && answer.GetPost() != nil:
			step.Outcome = "modify"
			outcome.Post = answer.GetPost()
		case answer.GetAction() == pc.FilterAction_FILTER_ACTION_MODIFY:
			step.Outcome = "error"
			step.Error = &ctl.HostError{Kind: "plugin_error", Message: fmt.Sprintf("plugin %q, hook MessageWillBePosted: FILTER_ACTION_MODIFY without a post; the post passes on unchanged", m.id)}
		case answer.GetAction() == pc.FilterAction_FILTER_ACTION_REJECT:
			step.Outcome = "reject"
			outcome.Steps = append(outcome.Steps, step)
			outcome.Rejected, outcome.RejectedBy = true, m.id
			outcome.RejectionReason = answer.GetRejectionReason()
			return outcome
		default:
			step.Outcome = "error"
			step.Error = &ctl.HostError{Kind: "plugin_error", Message: fmt.Sprintf("plugin %q, hook MessageWillBePosted: unknown filter action %d; the post passes on unchanged", m.id, answer.GetAction())}
		}
		if step.Error != nil {
			h.log.Warn("filter step failed open", "plugin", m.id, "kind", step.Error.Kind, "message", step.Error.Message)
		}
		outcome.Steps = append(outcome.Steps, step)
	}
	return outcome
}

// notify sends MessageHasBeenPosted to every active plugin that lists it, concurrently
// (NT-1, NT-2); failures are logged only (NT-4).
func (h *host) notify(post *pc.Post) *ctl.NotifyOutcome {
	targets := h.activeWith("MessageHasBeenPosted")
	results := make([]*ctl.NotifyResult, len(targets))
	var wg sync.WaitGroup
	for i, m := range targets {
		wg.Add(1)
		go func(i int, m *managed) {
			defer wg.Done()
			failed := m.call("MessageHasBeenPosted", func(ctx context.Context, p *process) error {
				_, err := p.hooks.MessageHasBeenPosted(ctx, &pc.MessageHasBeenPostedRequest{Post: post})
				return err
			})
			results[i] = &ctl.NotifyResult{PluginId: m.id}
			if failed != nil {
				h.log.Warn("notification failed", "plugin", m.id, "kind", failed.kind, "message", failed.message)
				results[i].Error = failed.proto()
			}
		}(i, m)
	}
	wg.Wait()
	return &ctl.NotifyOutcome{Results: results}
}

// executeCommand is one plugin's command (RR-1, RR-2).
func (m *managed) executeCommand(request *pc.ExecuteCommandRequest) *ctl.CommandOutcome {
	var answer *pc.ExecuteCommandResponse
	failed := m.call("ExecuteCommand", func(ctx context.Context, p *process) error {
		var err error
		answer, err = p.hooks.ExecuteCommand(ctx, request)
		return err
	})
	switch {
	case failed != nil:
		return &ctl.CommandOutcome{Result: &ctl.CommandOutcome_Error{Error: failed.proto()}}
	case answer.GetError() != nil:
		e := answer.GetError()
		return &ctl.CommandOutcome{Result: &ctl.CommandOutcome_Error{Error: &ctl.HostError{Kind: "app_error", Code: e.GetCode(), Message: e.GetMessage()}}}
	}
	return &ctl.CommandOutcome{Result: &ctl.CommandOutcome_Response{Response: answer}}
}

// changeConfiguration stores a new configuration and sends it to the active process, one
// change at a time and in order (LC-3); an AppError is logged and the plugin stays active
// with it (LC-5). A plugin not active gets it at its next start (LC-1).
func (m *managed) changeConfiguration(configuration map[string]string) *ctl.ConfigurationOutcome {
	m.configMu.Lock()
	defer m.configMu.Unlock()
	m.mu.Lock()
	m.config = map[string]string{}
	for k, v := range configuration {
		m.config[k] = v
	}
	m.mu.Unlock()
	proc := m.activeProcess()
	if proc == nil {
		return &ctl.ConfigurationOutcome{Error: &ctl.HostError{Kind: "plugin_unavailable",
			Message: fmt.Sprintf("plugin %q is %s; the configuration is kept for its next start", m.id, m.status().GetState())}}
	}
	if !proc.implemented["OnConfigurationChange"] {
		return &ctl.ConfigurationOutcome{}
	}
	var answer *pc.OnConfigurationChangeResponse
	failed := m.call("OnConfigurationChange", func(ctx context.Context, p *process) error {
		var err error
		answer, err = p.hooks.OnConfigurationChange(ctx, &pc.OnConfigurationChangeRequest{Configuration: configuration})
		return err
	})
	switch {
	case failed != nil:
		return &ctl.ConfigurationOutcome{Error: failed.proto()}
	case answer.GetError() != nil:
		e := answer.GetError()
		m.log.Warn("OnConfigurationChange answered an application error; the plugin stays active with the new configuration",
			"plugin", m.id, "code", e.GetCode(), "message", e.GetMessage())
		return &ctl.ConfigurationOutcome{Error: &ctl.HostError{Kind: "app_error", Code: e.GetCode(), Message: e.GetMessage()}}
	}
	return &ctl.ConfigurationOutcome{}
}
