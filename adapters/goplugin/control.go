package main

import (
	"context"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ctl "pluginconf.dev/goplugin-adapter/pb/controlv1"
)

// control serves HostControl: it only translates between the suite and the host.
type control struct {
	host  *host
	front *front
}

func (c *control) GetHostInfo(context.Context, *ctl.GetHostInfoRequest) (*ctl.HostInfo, error) {
	return &ctl.HostInfo{
		HttpBaseUrl: c.front.baseURL,
		HostPid:     int32(os.Getpid()),
		Name:        "go-plugin 1.0.1 host (adapters/goplugin)",
		Capabilities: &ctl.HostCapabilities{
			Restarts:     true,
			HealthChecks: true,
			HttpFront:    true,
			AutoMtls:     true,
			HostApi:      true,
			// No circuit breaker: go-plugin has none, and this host adds none.
		},
	}, nil
}

func (c *control) LoadPlugin(_ context.Context, request *ctl.LoadPluginRequest) (*ctl.PluginStatus, error) {
	manifest, err := manifestFrom(request.GetManifest())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s, err := settingsFrom(request.GetPolicy())
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	m := newManaged(request.GetManifest().GetId(), manifest, s, c.host.log)
	if !c.host.add(m) {
		return nil, status.Errorf(codes.AlreadyExists, "a plugin with id %q is already loaded; unload it first", m.id)
	}
	return m.status(), nil
}

func (c *control) plugin(ref *ctl.PluginRef) (*managed, error) {
	m := c.host.get(ref.GetPluginId())
	if m == nil {
		return nil, status.Errorf(codes.NotFound, "no plugin with id %q is loaded", ref.GetPluginId())
	}
	return m, nil
}

func (c *control) EnablePlugin(_ context.Context, ref *ctl.PluginRef) (*ctl.PluginStatus, error) {
	m, err := c.plugin(ref)
	if err != nil {
		return nil, err
	}
	m.enable()
	return m.status(), nil
}

func (c *control) DisablePlugin(_ context.Context, ref *ctl.PluginRef) (*ctl.PluginStatus, error) {
	m, err := c.plugin(ref)
	if err != nil {
		return nil, err
	}
	m.disable()
	return m.status(), nil
}

func (c *control) UnloadPlugin(_ context.Context, ref *ctl.PluginRef) (*ctl.UnloadPluginResponse, error) {
	m, err := c.plugin(ref)
	if err != nil {
		return nil, err
	}
	m.disable()
	c.host.remove(m)
	m.markUnloaded()
	return &ctl.UnloadPluginResponse{}, nil
}

func (c *control) GetPluginStatus(_ context.Context, ref *ctl.PluginRef) (*ctl.PluginStatus, error) {
	m, err := c.plugin(ref)
	if err != nil {
		return nil, err
	}
	return m.status(), nil
}

func (c *control) WatchPlugin(ref *ctl.PluginRef, stream ctl.HostControl_WatchPluginServer) error {
	m, err := c.plugin(ref)
	if err != nil {
		return err
	}
	return m.watch(stream.Context(), stream.Send)
}

func (c *control) FireHook(_ context.Context, request *ctl.FireHookRequest) (*ctl.FireHookResponse, error) {
	switch hook := request.GetHook().(type) {
	case *ctl.FireHookRequest_MessageWillBePosted:
		return &ctl.FireHookResponse{Result: &ctl.FireHookResponse_Filter{Filter: c.host.filter(hook.MessageWillBePosted)}}, nil
	case *ctl.FireHookRequest_MessageHasBeenPosted:
		return &ctl.FireHookResponse{Result: &ctl.FireHookResponse_Notify{Notify: c.host.notify(hook.MessageHasBeenPosted)}}, nil
	case *ctl.FireHookRequest_ExecuteCommand:
		m, err := c.plugin(&ctl.PluginRef{PluginId: hook.ExecuteCommand.GetPluginId()})
		if err != nil {
			return nil, err
		}
		return &ctl.FireHookResponse{Result: &ctl.FireHookResponse_Command{Command: m.executeCommand(hook.ExecuteCommand.GetRequest())}}, nil
	case *ctl.FireHookRequest_ConfigurationChange:
		m, err := c.plugin(&ctl.PluginRef{PluginId: hook.ConfigurationChange.GetPluginId()})
		if err != nil {
			return nil, err
		}
		return &ctl.FireHookResponse{Result: &ctl.FireHookResponse_Configuration{Configuration: m.changeConfiguration(hook.ConfigurationChange.GetConfiguration())}}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "FireHookRequest sets no hook: set message_will_be_posted, message_has_been_posted, execute_command or configuration_change")
}
