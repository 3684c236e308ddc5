// Command goplugin is a go-plugin gRPC plugin for pluginconf's interop tests.
//
// It is what a go-plugin 1.0.1 plugin of another application looks like to a host:
// its own magic cookie and two application protocol versions, 5 and 6 (as Terraform
// providers have), served by go-plugin's own server code. It registers no service of its
// own: the transport profile of `pluginconf plugin` checks only what go-plugin serves
// (health, GRPCController, GRPCBroker, the handshake and the process's behaviour).
//
// It builds in GOPATH mode against the Debian go-plugin packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o goplugin .
package main

import (
	"context"
	"errors"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Handshake is the application's: a cookie of its own, versions negotiated below.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "PLUGINCONF_INTEROP_COOKIE",
	MagicCookieValue: "goplugin-interop",
}

// provider is a gRPC-only plugin that serves nothing beyond go-plugin's own services.
type provider struct {
	plugin.NetRPCUnsupportedPlugin
}

func (provider) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return nil
}

func (provider) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("goplugin is a plugin, not a host")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			5: {"provider": provider{}},
			6: {"provider": provider{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
